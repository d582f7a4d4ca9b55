"""MultitaskBatchSampler: what each strategy puts in an epoch, determinism, rank sharding, errors."""
import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset

from trainers.sampling import SAMPLING_STRATEGIES, MultitaskBatchSampler

SIZES = {"sst": 30, "para": 110, "sts": 20}


def make(strategy, sizes=SIZES, batch_size=4, **kwargs):
    return MultitaskBatchSampler(sizes, batch_size, strategy, **kwargs)


def local_indices(sampler, epoch, task):
    """The task's local indices over the epoch's global batches, in order."""
    return [
        i - sampler.offsets[task]
        for step in sampler.plan(epoch)
        for batch in step
        if batch.task == task
        for i in batch.indices.tolist()
    ]


def steps_per_task(sampler, epoch=0):
    return Counter(task for tasks in sampler.task_schedule(epoch) for task in tasks)


# ---- what an epoch holds, per strategy ----


def test_sequential_runs_each_task_whole_in_order():
    sampler = make("sequential")
    schedule = [tasks[0] for tasks in sampler.task_schedule(0)]
    assert schedule == ["sst"] * 8 + ["para"] * 28 + ["sts"] * 5
    for task, n in SIZES.items():
        assert sorted(local_indices(sampler, 0, task)) == list(range(n))


def test_proportional_uses_every_example_once_in_mixed_order():
    sampler = make("proportional")
    assert steps_per_task(sampler) == {"sst": 8, "para": 28, "sts": 5}
    for task, n in SIZES.items():
        assert sorted(local_indices(sampler, 0, task)) == list(range(n))
    schedule = [tasks[0] for tasks in sampler.task_schedule(0)]
    assert schedule != sorted(schedule, key=list(SIZES).index)


def test_round_robin_downsamples_every_task_to_the_smallest_and_alternates():
    sampler = make("round_robin")
    schedule = [tasks[0] for tasks in sampler.task_schedule(0)]
    assert schedule == ["sst", "para", "sts"] * 5
    for task in SIZES:
        drawn = local_indices(sampler, 0, task)
        assert len(drawn) == len(set(drawn)) == 20


def test_round_robin_draws_a_different_subsample_each_epoch():
    sampler = make("round_robin")
    assert set(local_indices(sampler, 0, "para")) != set(local_indices(sampler, 1, "para"))


@pytest.mark.parametrize(
    "temperature, size_cap, expected",
    [
        (1.0, None, {"a": 90, "b": 10}),  # proportional
        (2.0, None, {"a": 75, "b": 25}),  # sqrt(900) : sqrt(100) = 3 : 1
        (1e6, None, {"a": 50, "b": 50}),  # uniform
        (1.0, 300, {"a": 30, "b": 10}),  # a capped: counted as 300 rows, in the shares and in the steps
    ],
)
def test_temperature_shares_proportional_steps_over_the_capped_sizes_by_size_to_the_power_one_over_t(
        temperature, size_cap, expected):
    sampler = make("temperature", {"a": 900, "b": 100}, batch_size=10, temperature=temperature, size_cap=size_cap)
    assert len(sampler) == sum(expected.values())
    assert steps_per_task(sampler) == expected


def test_temperature_upsampled_task_repeats_only_after_a_full_pass():
    sampler = make("temperature", {"a": 900, "b": 100}, batch_size=10, temperature=1e6)
    drawn = local_indices(sampler, 0, "b") + local_indices(sampler, 1, "b")  # 1000 draws = 10 passes
    for start in range(0, 1000, 100):
        assert sorted(drawn[start : start + 100]) == list(range(100))


def test_temperature_downsampled_task_continues_its_pass_in_the_next_epoch():
    sampler = make("temperature", {"a": 900, "b": 100}, batch_size=10, temperature=1e6)
    first_pass = local_indices(sampler, 0, "a") + local_indices(sampler, 1, "a")[:400]
    assert sorted(first_pass) == list(range(900))


def test_equal_split_cuts_the_largest_task_like_seed_003():
    sampler = make("equal_split", {"sst": 8544, "para": 141498, "sts": 6040}, batch_size=32)
    assert sampler.num_splits == {"sst": 1, "para": 17, "sts": 1}
    assert len(local_indices(sampler, 0, "para")) == 141498 // 17
    assert len(local_indices(sampler, 0, "sst")) == 8544


def test_equal_split_parts_are_disjoint_across_a_cycle_and_recut_after_it():
    sampler = make("equal_split", num_splits={"para": 3})
    parts = [set(local_indices(sampler, epoch, "para")) for epoch in range(4)]
    assert [len(p) for p in parts] == [36] * 4
    assert len(parts[0] | parts[1] | parts[2]) == 108
    assert parts[3] != parts[0]
    assert sorted(local_indices(sampler, 0, "sst")) == list(range(30))


def test_equal_split_int_splits_only_the_largest_task():
    assert make("equal_split", num_splits=5).num_splits == {"sst": 1, "para": 5, "sts": 1}


def test_all_tasks_puts_a_full_batch_of_every_task_in_each_step():
    sampler = make("all_tasks")
    assert len(sampler) == math.ceil(110 / 4)
    for step in sampler:
        assert Counter(sampler.task_of(i) for i in step) == {"sst": 4, "para": 4, "sts": 4}


def test_all_tasks_cycles_smaller_tasks_through_complete_reshuffled_passes():
    sampler = make("all_tasks")
    drawn = local_indices(sampler, 0, "sts")  # 28 steps x 4 = 112 = 5 passes + 12
    passes = [drawn[k : k + 20] for k in range(0, 100, 20)]
    assert all(sorted(p) == list(range(20)) for p in passes)
    assert passes[0] != passes[1]


def test_all_tasks_covers_the_largest_task_about_once_per_epoch():
    assert set(local_indices(make("all_tasks"), 0, "para")) == set(range(110))


# ---- lengths and tails ----


@pytest.mark.parametrize("strategy", SAMPLING_STRATEGIES)
@pytest.mark.parametrize("drop_last", [False, True])
def test_len_is_exact_and_the_same_every_epoch(strategy, drop_last):
    sampler = make(strategy, drop_last=drop_last, num_replicas=2)
    lengths = set()
    for epoch in range(3):
        sampler.set_epoch(epoch)
        lengths |= {len(sampler), len(list(sampler))}
    assert len(lengths) == 1


@pytest.mark.parametrize("strategy", SAMPLING_STRATEGIES)
def test_drop_last_yields_only_full_batches(strategy):
    sampler = make(strategy, drop_last=True)
    per_step = 3 * 4 if strategy == "all_tasks" else 4
    assert {len(step) for step in sampler} == {per_step}


@pytest.mark.parametrize("strategy", ["proportional", "sequential"])
def test_drop_last_is_refused_where_it_leaves_a_task_no_step(strategy):
    # sts's 5 rows never fill a batch of 8: its head would never train, yet still be scored.
    with pytest.raises(ValueError, match=r"gives task\(s\) sts no step: sts has 5 examples, fewer than a global batch of 8"):
        MultitaskBatchSampler({"sst": 40, "sts": 5}, batch_size=8, strategy=strategy, drop_last=True)


def test_tail_keeps_its_partial_batch_with_one_replica():
    assert [len(b) for b in make("sequential", {"a": 10}, batch_size=4)] == [4, 4, 2]


def test_tail_is_padded_from_the_epoch_start_so_every_rank_gets_as_many():
    ranks = [make("sequential", {"a": 11}, batch_size=2, num_replicas=2, rank=r) for r in range(2)]
    order = local_indices(ranks[0], 0, "a")
    tails = [list(r)[-1] for r in ranks]
    assert [len(t) for t in tails] == [2, 2]
    assert tails[0] + tails[1] == order[8:11] + order[:1]


# ---- determinism ----


@pytest.mark.parametrize("strategy", SAMPLING_STRATEGIES)
def test_same_seed_and_epoch_give_the_same_batches(strategy):
    first, second = make(strategy, seed=3), make(strategy, seed=3)
    first.set_epoch(2)
    second.set_epoch(2)
    assert list(first) == list(second)


@pytest.mark.parametrize("strategy", SAMPLING_STRATEGIES)
def test_other_seed_gives_other_batches(strategy):
    assert list(make(strategy, seed=3)) != list(make(strategy, seed=4))


@pytest.mark.parametrize("strategy", SAMPLING_STRATEGIES)
def test_each_epoch_is_reshuffled_and_replayable(strategy):
    sampler = make(strategy)
    epoch_0 = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != epoch_0
    sampler.set_epoch(0)
    assert list(sampler) == epoch_0


def test_reordering_the_tasks_does_not_reshuffle_a_task():
    forward = make("sequential")
    backward = make("sequential", dict(reversed(SIZES.items())))
    assert local_indices(forward, 1, "para") == local_indices(backward, 1, "para")


# ---- data parallelism ----


@pytest.mark.parametrize("strategy", SAMPLING_STRATEGIES)
def test_two_ranks_share_each_step_disjointly_on_the_same_task(strategy):
    sizes = {"sst": 32, "para": 112, "sts": 24}  # tails divisible by 2: nothing padded
    ranks = [make(strategy, sizes, num_replicas=2, rank=r, seed=7) for r in range(2)]
    alone = make(strategy, sizes, batch_size=8, seed=7)
    for r in ranks + [alone]:
        r.set_epoch(1)
    assert len(ranks[0]) == len(ranks[1]) == len(alone)
    for step_0, step_1, whole in zip(*ranks, alone):
        assert len(step_0) == len(step_1)
        assert not set(step_0) & set(step_1)
        assert sorted(step_0 + step_1) == sorted(whole)
        assert Counter(map(ranks[0].task_of, step_0)) == Counter(map(ranks[0].task_of, step_1))


# ---- no duplicates ----


def test_no_duplicates_keeps_repeated_keys_in_different_batches():
    keys = [(f"q{i % 9}", f"q{i % 13 + 100}") for i in range(110)]  # every key repeats 8-12 times
    sampler = make("proportional", example_keys={"para": keys})
    para_batches = [b.indices for s in sampler.plan(0) for b in s if b.task == "para"]
    for batch in para_batches:
        batch_keys = [k for i in batch.tolist() for k in keys[i - sampler.offsets["para"]]]
        assert len(batch_keys) == len(set(batch_keys))
    assert sorted(local_indices(sampler, 0, "para")) == list(range(110))
    assert sampler.task_schedule(0) == make("proportional").task_schedule(0)


def test_no_duplicates_leaves_a_clash_it_cannot_resolve():
    # Six copies of one key in two batches of three: no swap can separate them, so none is made.
    sampler = make("sequential", {"a": 6}, batch_size=3, example_keys={"a": ["same"] * 6})
    assert list(sampler) == list(make("sequential", {"a": 6}, batch_size=3))


# ---- use with DataLoader ----


def test_dataloader_over_concatenated_tasks_yields_single_task_batches():
    datasets = [TensorDataset(torch.full((n,), t)) for t, n in enumerate(SIZES.values())]
    sampler = make("proportional")
    loader = DataLoader(ConcatDataset(datasets), batch_sampler=sampler)
    task_ids = [batch[0].unique().tolist() for batch in loader]
    assert all(len(ids) == 1 for ids in task_ids)
    assert Counter(ids[0] for ids in task_ids) == {0: 8, 1: 28, 2: 5}


def test_task_of_maps_global_indices_to_tasks():
    sampler = make("proportional")
    assert [sampler.task_of(i) for i in (0, 29, 30, 139, 140, 159)] == ["sst", "sst", "para", "para", "sts", "sts"]
    with pytest.raises(IndexError, match="160"):
        sampler.task_of(160)


# ---- bad arguments ----


def test_unknown_strategy_error_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'shuffle'.*sequential, round_robin, proportional, temperature"):
        make("shuffle")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"num_replicas": 0}, "num_replicas"),
        ({"num_replicas": 2, "rank": 2}, "rank=2"),
        ({"sizes": {}}, "non-empty"),
        ({"sizes": {"sst": 0}}, r"sizes\['sst'\]"),
        ({"temperature": 2.0}, "temperature applies only"),
        ({"size_cap": 10}, "size_cap applies only"),
        ({"num_splits": 3}, "num_splits applies only"),
        ({"example_keys": {"qqp": []}}, "unknown task 'qqp'"),
        ({"example_keys": {"sts": ["x"] * 3}}, r"example_keys\['sts'\] has 3 entries"),
        ({"example_keys": {"sts": [[[1]]] * 20}}, "unhashable"),
        ({"drop_last": True, "batch_size": 200}, "no step"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    kwargs = {"sizes": SIZES, "batch_size": 4, **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        MultitaskBatchSampler(kwargs.pop("sizes"), kwargs.pop("batch_size"), "proportional", **kwargs)


@pytest.mark.parametrize(
    "strategy, kwargs, message",
    [
        ("temperature", {"temperature": 0}, "temperature must be"),
        ("temperature", {"size_cap": {"qqp": 5}}, "unknown tasks"),
        ("equal_split", {"num_splits": {"sts": 21}}, r"num_splits\['sts'\]=21 exceeds"),
        ("equal_split", {"num_splits": 0}, "num_splits"),
    ],
)
def test_bad_strategy_options_are_named(strategy, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(strategy, **kwargs)


def test_set_epoch_rejects_a_negative_epoch():
    with pytest.raises(ValueError, match="epoch"):
        make("proportional").set_epoch(-1)


def test_plan_batches_are_numpy_global_indices():
    step = make("sequential").plan(0)[8]
    assert step[0].task == "para" and isinstance(step[0].indices, np.ndarray) and step[0].indices.min() >= 30


# ---- length grouping ----------------------------------------------------------------------------------


def _padded_tokens(sampler, lengths):
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in sampler)


def test_length_grouping_cuts_padding_and_keeps_the_epoch_complete():
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 120, size=4000)
    plain = MultitaskBatchSampler({"t": 4000}, 16, "proportional", seed=1)
    grouped = MultitaskBatchSampler({"t": 4000}, 16, "proportional", seed=1, lengths={"t": lengths})
    assert sorted(i for b in grouped for i in b) == list(range(4000))
    assert _padded_tokens(grouped, lengths) < 0.75 * _padded_tokens(plain, lengths)


def test_length_grouping_is_deterministic_and_changes_with_the_epoch():
    lengths = {"t": np.arange(400) % 37, "u": np.arange(300) % 11}
    a = MultitaskBatchSampler({"t": 400, "u": 300}, 8, "proportional", seed=3, lengths=lengths)
    b = MultitaskBatchSampler({"t": 400, "u": 300}, 8, "proportional", seed=3, lengths=lengths)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first


def test_length_grouping_rejects_a_length_list_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"lengths\['t'\] has 3 entries for 10 examples"):
        MultitaskBatchSampler({"t": 10}, 2, "proportional", lengths={"t": [1, 2, 3]})


# ---- token_budget: batches of short rows take more of them ----


def _packed_sampler(num_replicas=1, rank=0, **kwargs):
    """SST: 40 long rows (20 tokens) and 160 short ones (2 tokens), capped at 100 rows an epoch beside the long
    ones; para: 30 rows of 10 tokens."""
    lengths = {"sst": [20] * 40 + [2] * 160, "para": [10] * 30}
    options = dict(strategy="proportional", seed=5, lengths=lengths, epoch_rows={"sst": 100},
                   always_rows={"sst": 40}, token_budget={"sst": 80}, num_replicas=num_replicas, rank=rank)
    return MultitaskBatchSampler({"sst": 200, "para": 30}, 4, **{**options, **kwargs})


def _batches(sampler, task, epoch):
    return [batch.indices - sampler.offsets[task] for step in sampler.plan(epoch) for batch in step if batch.task == task]


def test_token_budget_fills_a_batch_of_short_rows_with_more_of_them():
    sampler = _packed_sampler()
    lengths = np.array([20] * 40 + [2] * 160)
    *batches, tail = _batches(sampler, "sst", 0)
    short = [batch for batch in batches if lengths[batch].max() == 2]
    assert short and all(4 < len(batch) <= 40 for batch in short)  # 40 rows × 2 tokens: the budget of 80
    assert all(len(batch) == 4 for batch in batches if lengths[batch].max() == 20)  # the budget already spent


def test_token_budget_makes_fewer_steps_and_reads_the_same_rows():
    packed, plain = _packed_sampler(), _packed_sampler(token_budget=None)
    assert len(packed) < len(plain)
    for epoch in range(3):
        rows = np.concatenate(_batches(packed, "sst", epoch))
        assert sorted(rows.tolist()) == sorted(np.concatenate(_batches(plain, "sst", epoch)).tolist())
        assert len(rows) == 140


def test_token_budget_leaves_the_other_tasks_batches_alone():
    packed, plain = _packed_sampler(), _packed_sampler(token_budget=None)
    assert [b.tolist() for b in _batches(packed, "para", 0)] == [b.tolist() for b in _batches(plain, "para", 0)]


def test_token_budget_gives_every_epoch_the_same_number_of_steps():
    sampler = _packed_sampler()
    counts = {len(_batches(sampler, "sst", epoch)) for epoch in range(6)}
    assert len(counts) == 1
    assert {len(sampler.plan(epoch)) for epoch in range(6)} == {len(sampler)}


def test_token_budget_batches_split_evenly_over_ranks():
    shares = [_packed_sampler(num_replicas=2, rank=rank) for rank in range(2)]
    for batch in _batches(shares[0], "sst", 1):
        assert len(batch) % 2 == 0
    ranks = [list(sampler) for sampler in shares]
    assert all(len(a) == len(b) for a, b in zip(*ranks))
    assert not any(set(a) & set(b) for a, b in zip(*ranks))


def test_token_budget_leaves_no_row_of_the_epoch_untrained_on_three_ranks():
    lengths = np.random.default_rng(0).integers(2, 12, 1000).tolist()
    ranks = [MultitaskBatchSampler({"sst": 1000}, 8, num_replicas=3, rank=rank, seed=3, lengths={"sst": lengths},
                                   token_budget={"sst": 200}) for rank in range(3)]
    for epoch in range(3):
        for sampler in ranks:
            sampler.set_epoch(epoch)
        assert {i for sampler in ranks for batch in sampler for i in batch} == set(range(1000))


def test_separating_duplicates_keeps_every_packed_batch_within_its_token_budget():
    # Short rows share keys three ways; swapping a long row into a batch of short ones would cost 20 × its rows.
    keys = [f"long{i}" for i in range(40)] + [f"short{i % 60}" for i in range(160)]
    sampler = _packed_sampler(example_keys={"sst": keys})
    lengths = np.array([20] * 40 + [2] * 160)
    for epoch in range(3):
        for batch in _batches(sampler, "sst", epoch):
            assert len(batch) * lengths[batch].max() <= max(80, 4 * lengths[batch].max()), batch


def test_token_budget_needs_the_tasks_lengths():
    with pytest.raises(ValueError, match=r"token_budget\['sst'\] needs the task's example lengths"):
        _packed_sampler(lengths={"para": [10] * 30})


def test_token_budget_is_refused_with_drop_last():
    with pytest.raises(ValueError, match="token_budget cannot be combined with drop_last"):
        _packed_sampler(drop_last=True)


def test_token_budget_with_a_strategy_it_does_not_apply_to_is_an_error():
    with pytest.raises(ValueError, match="token_budget applies only to"):
        _packed_sampler(strategy="round_robin", epoch_rows=None, always_rows=None)


# ---- epoch_rows: a very large task gives each epoch only its next share ----


def _task_indices(sampler, task, epoch):
    sampler.set_epoch(epoch)
    offset = sampler.offsets[task]
    return [i - offset for batch in sampler for i in batch if sampler.task_of(i) == task]


def test_epoch_rows_caps_a_large_tasks_examples_per_epoch_and_leaves_the_others_whole():
    sampler = MultitaskBatchSampler({"sst": 100, "para": 30}, batch_size=4, strategy="proportional", epoch_rows={"sst": 40})
    assert len(_task_indices(sampler, "sst", 0)) == 40
    assert sorted(_task_indices(sampler, "para", 0)) == list(range(30))


def test_epoch_rows_continues_through_the_task_so_epochs_cover_all_of_it_before_repeating():
    sampler = MultitaskBatchSampler({"sst": 100, "para": 8}, batch_size=4, strategy="proportional", epoch_rows={"sst": 25})
    four_epochs = [i for epoch in range(4) for i in _task_indices(sampler, "sst", epoch)]
    assert sorted(four_epochs) == list(range(100))


def test_epoch_rows_larger_than_the_task_changes_nothing():
    capped = MultitaskBatchSampler({"sst": 20, "para": 8}, batch_size=4, strategy="proportional", epoch_rows=50, seed=3)
    plain = MultitaskBatchSampler({"sst": 20, "para": 8}, batch_size=4, strategy="proportional", seed=3)
    assert list(capped) == list(plain)


def test_epoch_rows_with_a_strategy_it_does_not_apply_to_is_an_error():
    with pytest.raises(ValueError, match="epoch_rows applies only to"):
        MultitaskBatchSampler({"sst": 20, "para": 8}, batch_size=4, strategy="round_robin", epoch_rows={"sst": 10})


def test_epoch_passes_read_each_example_that_many_times_an_epoch_and_leave_the_others_once():
    sampler = MultitaskBatchSampler({"sst": 100, "sts": 10}, batch_size=4, strategy="proportional", epoch_passes={"sts": 3})
    for epoch in range(2):
        assert sorted(_task_indices(sampler, "sts", epoch)) == sorted(list(range(10)) * 3)
        assert sorted(_task_indices(sampler, "sst", epoch)) == list(range(100))


def test_epoch_passes_give_a_task_that_many_times_the_steps():
    once = MultitaskBatchSampler({"sst": 100, "sts": 12}, batch_size=4, strategy="proportional")
    thrice = MultitaskBatchSampler({"sst": 100, "sts": 12}, batch_size=4, strategy="proportional", epoch_passes={"sts": 3})
    assert steps_per_task(once)["sts"] == 3 and steps_per_task(thrice)["sts"] == 9
    assert steps_per_task(thrice)["sst"] == steps_per_task(once)["sst"] and len(thrice) == len(once) + 6


def test_epoch_passes_order_each_pass_afresh():
    sampler = MultitaskBatchSampler({"sst": 8, "sts": 40}, batch_size=4, strategy="sequential", epoch_passes={"sts": 2})
    order = _task_indices(sampler, "sts", 0)
    first, second = order[:40], order[40:]
    assert sorted(first) == sorted(second) == list(range(40)) and first != second


@pytest.mark.parametrize("seed", range(5))
def test_epoch_passes_never_put_a_row_twice_in_one_batch_under_length_grouping(seed):
    lengths = {"sts": np.random.default_rng(seed).integers(1, 4, size=10)}  # ties: copies would sort side by side
    sampler = MultitaskBatchSampler({"sts": 10}, batch_size=4, strategy="proportional", seed=seed, lengths=lengths,
                                    epoch_passes={"sts": 3})
    for epoch in range(3):
        for step in sampler.plan(epoch):
            (batch,) = step
            assert len(set(batch.indices.tolist())) == len(batch.indices)


@pytest.mark.parametrize("strategy", ["temperature", "all_tasks"])
def test_a_stream_read_across_passes_never_puts_a_row_twice_in_one_batch_under_length_grouping(strategy):
    # The small task's stream runs through several reshuffled passes an epoch; ties in length would sort a row
    # beside its repeat in a megabatch that spans two passes.
    lengths = {"sst": np.full(200, 5), "sts": np.random.default_rng(0).integers(1, 4, size=10)}
    sampler = MultitaskBatchSampler({"sst": 200, "sts": 10}, batch_size=4, strategy=strategy, lengths=lengths)
    for epoch in range(3):
        for step in sampler.plan(epoch):
            for batch in step:
                assert len(set(batch.indices.tolist())) == len(batch.indices), (epoch, batch.task)


def test_a_capped_epoch_read_across_a_pass_boundary_never_puts_a_row_twice_in_one_batch():
    lengths = {"sst": np.random.default_rng(1).integers(1, 3, size=30), "sts": np.full(8, 4)}
    sampler = MultitaskBatchSampler({"sst": 30, "sts": 8}, batch_size=4, strategy="proportional", lengths=lengths,
                                    epoch_rows={"sst": 20})
    for epoch in range(4):  # epoch 1 reads rows 20..39 of the stream: across its first pass boundary
        for batch in _batches(sampler, "sst", epoch):
            assert len(set(batch.tolist())) == len(batch)


def test_epoch_passes_under_a_token_budget_give_every_epoch_the_same_number_of_steps():
    lengths = {"sst": np.random.default_rng(0).integers(2, 30, size=60)}
    sampler = MultitaskBatchSampler({"sst": 60, "sts": 8}, batch_size=4, strategy="proportional", lengths=lengths,
                                    token_budget={"sst": 64}, epoch_passes={"sst": 2})
    assert len({len(sampler.plan(epoch)) for epoch in range(4)}) == 1
    assert sorted(_task_indices(sampler, "sst", 1)) == sorted(list(range(60)) * 2)


def test_epoch_passes_and_a_cap_on_the_same_task_are_refused():
    with pytest.raises(ValueError, match=r"epoch_passes\['sst'\]=2 and epoch_rows\['sst'\]=50"):
        MultitaskBatchSampler({"sst": 100, "sts": 10}, 4, "proportional", epoch_rows={"sst": 50}, epoch_passes={"sst": 2})


def test_epoch_passes_with_a_strategy_it_does_not_apply_to_is_an_error():
    with pytest.raises(ValueError, match="epoch_passes applies only to"):
        MultitaskBatchSampler({"sst": 20, "sts": 8}, batch_size=4, strategy="temperature", epoch_passes={"sts": 2})


def test_always_rows_are_read_whole_every_epoch_and_the_cap_draws_from_the_rest():
    sampler = MultitaskBatchSampler({"sst": 100, "para": 8}, batch_size=4, strategy="proportional",
                                    epoch_rows={"sst": 30}, always_rows={"sst": 10})
    for epoch in range(3):
        indices = _task_indices(sampler, "sst", epoch)
        assert len(indices) == 40 and len(set(indices)) == 40
        assert set(range(10)) <= set(indices)


def test_always_rows_leave_the_cap_covering_the_rest_before_repeating():
    sampler = MultitaskBatchSampler({"sst": 100, "para": 8}, batch_size=4, strategy="proportional",
                                    epoch_rows={"sst": 30}, always_rows={"sst": 10})
    rest = [i for epoch in range(3) for i in _task_indices(sampler, "sst", epoch) if i >= 10]
    assert sorted(rest) == list(range(10, 100))


def test_always_rows_shuffle_the_core_rows_among_the_capped_ones():
    sampler = MultitaskBatchSampler({"sst": 100, "para": 8}, batch_size=4, strategy="proportional",
                                    epoch_rows={"sst": 30}, always_rows={"sst": 10})
    order = _task_indices(sampler, "sst", 0)
    assert sorted(order[:10]) != list(range(10))


def test_always_rows_larger_than_the_task_is_an_error():
    with pytest.raises(ValueError, match=r"always_rows\['sst'\]=30 exceeds the task's 20 examples"):
        MultitaskBatchSampler({"sst": 20, "para": 8}, 4, "proportional", epoch_rows={"sst": 5}, always_rows={"sst": 30})
