"""The MNR and CoSENT losses against hand computations on toy embeddings."""
import math

import pytest
import torch
import torch.nn.functional as F

from trainers.losses import (
    cosent_loss,
    false_negative_mask,
    multiple_negatives_ranking_loss,
    paraphrase_mnr_loss,
    sentence_keys,
)


def unit(degrees):
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def cos(first, second):
    """Cosine of two unit vectors given by their angles in degrees."""
    return math.cos(math.radians(first - second))


def softmax_nll(scores, target):
    """-log softmax(scores)[target], by hand."""
    return -scores[target] + math.log(sum(math.exp(s) for s in scores))


# Anchors at 0 and 90 degrees, positives at 44 and 46 degrees: similarities close enough that a scale of
# 20 leaves losses of order 1.
A, P = (0, 90), (44, 46)


@pytest.fixture
def toy():
    anchors = torch.tensor([unit(d) for d in A])
    positives = torch.tensor([unit(d) for d in P]) * torch.tensor([[2.0], [0.5]])  # norms must not matter
    return anchors, positives


def forward_by_hand(scale=20.0, extra=(), masked=()):
    """Mean over anchors of -log softmax over (positives + extra), skipping masked (i, j) candidates."""
    candidates = list(P) + list(extra)
    total = 0.0
    for i, anchor in enumerate(A):
        kept = [j for j in range(len(candidates)) if (i, j) not in masked]
        scores = [scale * cos(anchor, candidates[j]) for j in kept]
        total += softmax_nll(scores, kept.index(i))
    return total / len(A)


def backward_by_hand(scale=20.0, masked=()):
    """Each positive i picks its anchor among all anchors j; (j, i) masked in the forward mask."""
    total = 0.0
    for i, positive in enumerate(P):
        kept = [j for j in range(len(A)) if (j, i) not in masked]
        total += softmax_nll([scale * cos(positive, A[j]) for j in kept], kept.index(i))
    return total / len(P)


def test_loss_is_cross_entropy_of_scaled_cosines_against_the_diagonal(toy):
    # Each anchor's positive is 44 degrees away, its negative 46: loss = log(1 + e^(20 (cos 46 - cos 44))).
    expected = math.log1p(math.exp(20 * (math.cos(math.radians(46)) - math.cos(math.radians(44)))))
    assert expected == pytest.approx(forward_by_hand()) == pytest.approx(0.4765, abs=1e-4)
    assert multiple_negatives_ranking_loss(*toy).item() == pytest.approx(expected, rel=1e-5)


def test_scale_multiplies_the_cosines(toy):
    loss = multiple_negatives_ranking_loss(*toy, scale=5.0)
    assert loss.item() == pytest.approx(forward_by_hand(scale=5.0), rel=1e-5)


def test_symmetric_averages_anchor_to_positive_and_positive_to_anchor(toy):
    expected = (forward_by_hand() + backward_by_hand()) / 2
    assert multiple_negatives_ranking_loss(*toy, symmetric=True).item() == pytest.approx(expected, rel=1e-5)


def test_extra_negatives_join_every_anchors_candidates(toy):
    extra = torch.tensor([unit(50), unit(30)])
    loss = multiple_negatives_ranking_loss(*toy, extra_negatives=extra)
    assert loss.item() == pytest.approx(forward_by_hand(extra=(50, 30)), rel=1e-5)


def test_masked_false_negative_leaves_the_softmax(toy):
    mask = torch.tensor([[False, True], [False, False]])
    loss = multiple_negatives_ranking_loss(*toy, false_negative_mask=mask)
    assert loss.item() == pytest.approx(forward_by_hand(masked={(0, 1)}), rel=1e-5)


def test_symmetric_reverse_direction_uses_the_transposed_mask(toy):
    mask = torch.tensor([[False, True], [False, False]])  # pair (a_0, p_1) excluded both ways
    expected = (forward_by_hand(masked={(0, 1)}) + backward_by_hand(masked={(0, 1)})) / 2
    loss = multiple_negatives_ranking_loss(*toy, symmetric=True, false_negative_mask=mask)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_symmetric_reverse_direction_reads_an_asymmetric_mask_transposed():
    generator = torch.Generator().manual_seed(0)
    anchors, positives = torch.randn(3, 5, generator=generator), torch.randn(3, 5, generator=generator)
    mask = torch.tensor([[False, True, False], [False, False, False], [True, False, False]])
    scores = 20 * F.normalize(anchors, dim=-1) @ F.normalize(positives, dim=-1).T
    masked = scores.masked_fill(mask, float("-inf"))  # masked[j, i]: anchor j against positive i
    expected = (F.cross_entropy(masked, torch.arange(3)) + F.cross_entropy(masked.T, torch.arange(3))) / 2
    loss = multiple_negatives_ranking_loss(anchors, positives, symmetric=True, false_negative_mask=mask)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_single_pair_without_negatives_has_zero_loss():
    loss = multiple_negatives_ranking_loss(torch.randn(1, 4), torch.randn(1, 4))
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_no_pairs_gives_a_zero_that_backpropagates():
    anchors = torch.zeros(0, 3, requires_grad=True)
    extra = torch.randn(2, 3, requires_grad=True)
    loss = multiple_negatives_ranking_loss(anchors, torch.zeros(0, 3), extra_negatives=extra)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(extra.grad, torch.zeros(2, 3))


def test_gradient_pulls_each_anchor_towards_its_positive():
    anchors = torch.tensor([[1.0, 0.2], [0.1, 1.0]], requires_grad=True)
    positives = torch.tensor([[0.2, 1.0], [1.0, 0.1]])  # swapped: every anchor is nearer the wrong one
    multiple_negatives_ranking_loss(anchors, positives).backward()
    moved = F.normalize(anchors.detach() - 0.01 * anchors.grad, dim=-1)
    before = F.cosine_similarity(anchors.detach(), positives)
    assert torch.all(F.cosine_similarity(moved, positives) > before)


def test_bf16_autocast_does_not_round_the_similarities():
    torch.manual_seed(0)
    anchors, positives = torch.randn(8, 16), torch.randn(8, 16)
    exact = multiple_negatives_ranking_loss(anchors, positives)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = multiple_negatives_ranking_loss(anchors, positives)
    assert under_autocast.dtype == torch.float32
    assert under_autocast.item() == pytest.approx(exact.item(), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": 0.0}, "scale must be positive"),
        ({"false_negative_mask": torch.eye(2, dtype=torch.bool)}, "diagonal"),
        ({"false_negative_mask": torch.zeros(2, 3, dtype=torch.bool)}, r"shape \(2, 2\)"),
        ({"false_negative_mask": torch.zeros(2, 2)}, "bool tensor"),
        ({"extra_negatives": torch.zeros(1, 3)}, r"\(E, 2\)"),
    ],
)
def test_bad_arguments_are_named(toy, kwargs, message):
    with pytest.raises(ValueError, match=message):
        multiple_negatives_ranking_loss(*toy, **kwargs)


def test_mismatched_anchor_and_positive_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\(2, 2\) and \(3, 2\)"):
        multiple_negatives_ranking_loss(torch.zeros(2, 2), torch.zeros(3, 2))


# ---- false negatives from sentence keys ----


def test_false_negative_mask_groups_paraphrases_transitively():
    # "x" ~ "y" (pair 0) and "y" ~ "z" (pair 1): z is a paraphrase of x too; pair 2 is unrelated.
    mask = false_negative_mask(["x", "y", "u"], ["y", "z", "v"], extra_keys=["z", "w", "u"])
    expected = torch.tensor(
        [
            [False, True, False, True, False, False],
            [True, False, False, True, False, False],
            [False, False, False, False, False, True],
        ]
    )
    assert torch.equal(mask, expected)


def test_sentence_keys_ignore_padding():
    ids = torch.tensor([[101, 7, 8, 102, 0], [101, 7, 8, 102, 5]])
    attention = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    keys = sentence_keys(ids, attention)
    assert keys[0] == keys[1] == (101, 7, 8, 102)


# ---- the paraphrase-task helper ----


def pair_batch():
    torch.manual_seed(0)
    return torch.randn(5, 6), torch.randn(5, 6), torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])


def test_paraphrase_pairs_are_the_positives_and_non_paraphrases_extra_negatives():
    a, b, labels = pair_batch()
    expected = multiple_negatives_ranking_loss(
        a[[0, 2, 4]], b[[0, 2, 4]], extra_negatives=torch.cat([a[[1, 3]], b[[1, 3]]])
    )
    assert paraphrase_mnr_loss(a, b, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_paraphrase_loss_without_non_paraphrase_negatives():
    a, b, labels = pair_batch()
    expected = multiple_negatives_ranking_loss(a[[0, 2, 4]], b[[0, 2, 4]], symmetric=True)
    loss = paraphrase_mnr_loss(a, b, labels, symmetric=True, use_non_paraphrases=False)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_paraphrase_keys_mask_a_repeated_sentence():
    a, b, labels = pair_batch()
    keys_a = ["q1", "n1", "q1", "n2", "q3"]  # pairs 0 and 2 share their first sentence
    keys_b = ["q2", "m1", "q4", "q3", "q5"]  # the non-paraphrase pair 3 holds q3, pair 4's anchor
    mask = torch.tensor(
        [  # candidates: b0 b2 b4 | a1 a3 | b1 b3
            [False, True, False, False, False, False, False],
            [True, False, False, False, False, False, False],
            [False, False, False, False, False, False, True],
        ]
    )
    expected = multiple_negatives_ranking_loss(
        a[[0, 2, 4]], b[[0, 2, 4]], extra_negatives=torch.cat([a[[1, 3]], b[[1, 3]]]), false_negative_mask=mask
    )
    loss = paraphrase_mnr_loss(a, b, labels, keys_a=keys_a, keys_b=keys_b)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_batch_without_paraphrases_gives_zero():
    a, b, _ = pair_batch()
    assert paraphrase_mnr_loss(a, b, torch.zeros(5)).item() == 0.0


@pytest.mark.parametrize(
    "labels, keys, message",
    [
        (torch.tensor([1.0, 0.5, 1.0, 0.0, 1.0]), {}, "0 or 1"),
        (torch.ones(4), {}, r"shape \(5,\)"),
        (torch.ones(5), {"keys_a": list("abcde")}, "both keys_a and keys_b"),
        (torch.ones(5), {"keys_a": list("abcde"), "keys_b": list("abc")}, "keys_b has 3 entries"),
    ],
)
def test_paraphrase_bad_arguments_are_named(labels, keys, message):
    a, b, _ = pair_batch()
    with pytest.raises(ValueError, match=message):
        paraphrase_mnr_loss(a, b, labels, **keys)


# ---------------------------------------------------------------------------------------------------------
# CoSENT
# ---------------------------------------------------------------------------------------------------------


def cosent_by_hand(cosines, labels, scale=20.0):
    """log(1 + sum over (i, j) with y_i > y_j of exp(scale * (cos_j - cos_i)))."""
    terms = [math.exp(scale * (cosines[j] - cosines[i]))
             for i in range(len(labels)) for j in range(len(labels)) if labels[i] > labels[j]]
    return math.log(1 + sum(terms))


def pairs_at_angles(angles):
    """First sentences all at 0 degrees, second sentences at `angles`: pair i's cosine is cos(angles[i])."""
    return torch.tensor([unit(0)] * len(angles)), torch.tensor([unit(angle) for angle in angles])


def test_cosent_loss_equals_its_formula():
    a, b = pairs_at_angles([10, 40, 80, 30])
    labels = torch.tensor([4.5, 2.0, 0.5, 2.0])  # a tie orders nothing
    expected = cosent_by_hand([cos(0, angle) for angle in (10, 40, 80, 30)], labels.tolist(), scale=5.0)
    assert cosent_loss(a, b, labels, scale=5.0).item() == pytest.approx(expected, rel=1e-6)


def test_cosent_loss_is_lower_when_the_cosines_follow_the_labels():
    labels = torch.tensor([5.0, 3.0, 1.0])
    in_order = cosent_loss(*pairs_at_angles([10, 45, 80]), labels)
    reversed_order = cosent_loss(*pairs_at_angles([80, 45, 10]), labels)
    assert in_order.item() < 0.01 < reversed_order.item()


def test_cosent_loss_reads_only_the_order_of_the_labels():
    a, b = pairs_at_angles([10, 40, 80])
    assert cosent_loss(a, b, torch.tensor([5.0, 3.0, 1.0])).item() == cosent_loss(a, b, torch.tensor([2.0, 1.9, 0.0])).item()


def test_cosent_loss_of_a_batch_with_one_label_is_zero_and_keeps_the_graph():
    a, b = pairs_at_angles([10, 40])
    b.requires_grad_(True)
    loss = cosent_loss(a, b, torch.tensor([3.0, 3.0]))
    loss.backward()
    assert loss.item() == 0.0 and b.grad is not None


def test_cosent_loss_rejects_labels_that_do_not_match_the_pairs():
    with pytest.raises(ValueError, match="labels must have shape"):
        cosent_loss(*pairs_at_angles([10, 40]), torch.tensor([1.0, 2.0, 3.0]))


def test_cosent_on_a_classification_tasks_class_numbers_is_refused_naming_the_flag():
    from trainers.losses import check_embedding_loss_task

    nli = {"kind": "classification", "labels": ["entailment", "neutral", "contradiction"], "pair_encoding": "cross"}
    with pytest.raises(ValueError, match="--cosent_task nli: CoSENT reads regression or binary labels, and nli's head is classification"):
        check_embedding_loss_task("cosent", "nli", {"nli": nli})

