"""Embedding losses gathered across data-parallel ranks (trainers/gathering.py): two gloo processes on CPU each
hold a share of one batch; their gathered losses must train as one process on the whole batch would."""
from functools import partial

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from trainers.gathering import gather_objects, gather_parts
from trainers.losses import cosent_loss, multiple_negatives_ranking_loss, paraphrase_mnr_loss

WORLD = 2


def global_pair_batch():
    """8 pairs, 4 per rank; rank 0 holds pairs 0-3 (paraphrases 0, 2), rank 1 pairs 4-7 (paraphrases 4, 6).
    Sentence "s" is in both ranks' paraphrases, so a false negative crosses ranks."""
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 6, generator=generator), torch.randn(8, 6, generator=generator)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    keys_a = ["s", "n1", "q2", "n2", "q4", "n3", "q6", "n4"]
    keys_b = ["p0", "m1", "p2", "m2", "s", "m3", "p6", "m4"]
    return a, b, labels, keys_a, keys_b


def rank_rows(rank, pairs_per_rank=4):
    return slice(rank * pairs_per_rank, (rank + 1) * pairs_per_rank)


def uneven_rows(rank):
    """Rank 0: pairs 0-3 (two paraphrases); rank 1: pairs 5 and 7 only (no paraphrase at all)."""
    return [0, 1, 2, 3] if rank == 0 else [5, 7]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Every scenario below, run once by two gloo processes: {scenario: [rank 0's result, rank 1's]}."""
    out_dir = tmp_path_factory.mktemp("ranks")
    mp.spawn(_worker, args=(f"file://{out_dir / 'rendezvous'}", out_dir), nprocs=WORLD, join=True)
    results = [torch.load(out_dir / f"rank{rank}.pt") for rank in range(WORLD)]
    return {scenario: [result[scenario] for result in results] for scenario in results[0]}


def _worker(rank, init_method, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=WORLD)
    a, b, labels, keys_a, keys_b = global_pair_batch()
    results = {}
    even = rank_rows(rank)
    for symmetric in (False, True):
        loss_fn = partial(paraphrase_mnr_loss, labels=labels[even], keys_a=keys_a[even], keys_b=keys_b[even],
                          symmetric=symmetric, gather_across_devices=True)
        results[f"mnr_symmetric={symmetric}"] = backward_of(loss_fn, a[even], b[even])
    rows = uneven_rows(rank)
    results["mnr_uneven"] = backward_of(
        lambda a, b: paraphrase_mnr_loss(a, b, labels[rows], keys_a=[keys_a[i] for i in rows],
                                         keys_b=[keys_b[i] for i in rows], gather_across_devices=True), a[rows], b[rows])
    results["cosent_uneven"] = backward_of(
        lambda a, b: cosent_loss(a, b, cosent_labels()[rows], gather_across_devices=True), a[rows], b[rows])
    parts, counts = gather_parts(a[rows][:1], b[rows])
    results["parts"] = {"parts": parts, "counts": counts, "keys": gather_objects([keys_a[rows[0]]])}
    torch.save(results, out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


def cosent_labels():
    return torch.arange(8.0) % 5


def backward_of(loss_fn, a, b):
    a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
    loss = loss_fn(a, b)
    loss.backward()
    return {"loss": loss.detach(), "grad_a": a.grad, "grad_b": b.grad}


@pytest.mark.slow
@pytest.mark.parametrize("symmetric", [False, True], ids=["one_direction", "symmetric"])
def test_gathered_mnr_trains_as_one_process_on_the_whole_batch(ranks, symmetric):
    a, b, labels, keys_a, keys_b = global_pair_batch()
    whole = backward_of(
        lambda a, b: paraphrase_mnr_loss(a, b, labels, keys_a=keys_a, keys_b=keys_b, symmetric=symmetric), a, b)
    results = ranks[f"mnr_symmetric={symmetric}"]
    # DDP averages the ranks' gradients; with as many anchors on each rank, the mean of their losses is the
    # whole batch's loss
    assert torch.stack([r["loss"] for r in results]).mean().item() == pytest.approx(whole["loss"].item(), rel=1e-5)
    for rank, result in enumerate(results):
        for side in ("grad_a", "grad_b"):
            torch.testing.assert_close(result[side] / WORLD, whole[side][rank_rows(rank)], rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_gathered_mnr_trains_as_one_process_however_the_ranks_anchors_are_shared_out(ranks):
    # rank 0 holds both paraphrase pairs (0, 2), rank 1 none: its sentences are only negatives of rank 0's anchors
    a, b, labels, keys_a, keys_b = global_pair_batch()
    held = uneven_rows(0) + uneven_rows(1)
    whole = backward_of(lambda a, b: paraphrase_mnr_loss(a, b, labels[held], keys_a=[keys_a[i] for i in held],
                                                         keys_b=[keys_b[i] for i in held]), a[held], b[held])
    results = ranks["mnr_uneven"]
    assert torch.stack([r["loss"] for r in results]).mean().item() == pytest.approx(whole["loss"].item(), rel=1e-5)
    assert results[1]["loss"].item() == 0.0 and results[1]["grad_a"].abs().sum() > 0
    for rank, result in enumerate(results):
        rows = slice(0, 4) if rank == 0 else slice(4, 6)
        for side in ("grad_a", "grad_b"):
            torch.testing.assert_close(result[side] / WORLD, whole[side][rows], rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_gathering_keeps_rank_order_and_each_ranks_own_counts(ranks):
    a, b, _, keys_a, _ = global_pair_batch()
    for result in ranks["parts"]:
        assert result["counts"] == [[1, 4], [1, 2]]
        torch.testing.assert_close(result["parts"][0], a[[0, 5]])
        torch.testing.assert_close(result["parts"][1], b[[0, 1, 2, 3, 5, 7]])
        assert result["keys"] == [keys_a[0], keys_a[5]]


@pytest.mark.slow
def test_gathered_cosent_orders_every_ranks_pairs_together(ranks):
    a, b, _, _, _ = global_pair_batch()
    held = uneven_rows(0) + uneven_rows(1)
    whole = backward_of(lambda a, b: cosent_loss(a, b, cosent_labels()[held]), a[held], b[held])
    for rank, result in enumerate(ranks["cosent_uneven"]):
        assert result["loss"].item() == pytest.approx(whole["loss"].item(), rel=1e-5)  # every rank: the whole batch's
        rows = slice(0, 4) if rank == 0 else slice(4, 6)
        for side in ("grad_a", "grad_b"):
            torch.testing.assert_close(result[side] / WORLD, whole[side][rows], rtol=1e-5, atol=1e-7)


def test_without_a_process_group_gathering_changes_nothing():
    a, b, labels, keys_a, keys_b = global_pair_batch()
    kwargs = dict(keys_a=keys_a, keys_b=keys_b, symmetric=True)
    gathered = paraphrase_mnr_loss(a, b, labels, gather_across_devices=True, **kwargs)
    assert gathered.item() == paraphrase_mnr_loss(a, b, labels, **kwargs).item()
    assert cosent_loss(a, b, labels, gather_across_devices=True).item() == cosent_loss(a, b, labels).item()


@pytest.mark.parametrize("parts", [[slice(0, 4), slice(4, 8)], [slice(0, 1), slice(1, 8)], [slice(0, 0), slice(0, 8)]])
def test_mnr_anchor_rows_parts_add_up_to_the_whole_batchs_mean(parts):
    a, b, _, _, _ = global_pair_batch()
    whole = multiple_negatives_ranking_loss(a, b, symmetric=True)
    shares = [multiple_negatives_ranking_loss(a, b, symmetric=True, anchor_rows=rows) for rows in parts]
    assert torch.stack(shares).sum().item() == pytest.approx(whole.item(), rel=1e-6)
