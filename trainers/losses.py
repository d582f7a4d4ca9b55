"""Ranking losses on sentence embeddings: Multiple Negatives Ranking (MNR, Henderson et al. 2017) for
paraphrase pairs, and CoSENT (Su 2022) for pairs with graded similarity labels.

For anchors a_1..a_B and their positives p_1..p_B, every anchor scores every candidate (all positives,
plus optional extra negatives) by scaled cosine similarity, and cross-entropy asks anchor i to pick p_i:

    loss = mean_i  -log softmax_j( scale * cos(a_i, c_j) )[i],      c = [p_1..p_B, extra_1..extra_E]

as sentence-transformers' `MultipleNegativesRankingLoss` does. Seeds 000/004 differed in ways that break
it: tanh of classifier logits instead of cosine similarity of embeddings, negatives built by rolling the
batch, and a candidate count that changed with the batch. Here the similarity is cosine on the
embeddings in fp32 (outside autocast: at scale 20, bf16 rounding would be visible), the candidate set is
the whole batch, and candidates that are known paraphrases of the anchor (the same sentence appearing
twice in a batch) can be masked out instead of being pushed away.

For the paraphrase task, `paraphrase_mnr_loss` takes a batch of labelled pairs: the paraphrase pairs
(label 1) are anchor/positive pairs, and both sentences of every non-paraphrase pair (label 0) join the
candidates as extra negatives. Those sentences are already embedded, so the extra negatives are free; they
are ordinary in-batch negatives for the other anchors (a non-paraphrase pair says nothing about them),
and any of them that is literally a sentence of an anchor's paraphrase group is masked when keys are given.

CoSENT (`cosent_loss`) reads the cosine of each pair of a batch of graded pairs (STS) and asks that a pair
with a higher label have a higher cosine than every pair with a lower one, whatever their absolute values:

    loss = log(1 + sum over pairs (i, j) with y_i > y_j of exp(scale * (cos_j - cos_i)))

as sentence-transformers' `CoSENTLoss` does. A regression head trained by MSE alone must put each cosine at
label / 5; the ranking term only orders them, which is what a correlation metric reads.
"""

from collections.abc import Hashable, Sequence
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .arguments import EMBEDDING_LOSSES
from .gathering import gather_objects, gather_parts, rank

# The head kinds whose labels each loss reads as it means them: MNR takes a pair labelled 1 as anchor and
# positive and one labelled 0 as two negatives (a paraphrase task's labels); CoSENT orders pairs by their labels
# (a similarity score, or paraphrase over not). A classification task's class numbers are neither.
EMBEDDING_LOSS_KINDS = {"mnr": ("binary",), "cosent": ("regression", "binary")}


def check_embedding_loss_task(loss: str, task: str, specs: dict) -> None:
    """--mnr_task / --cosent_task names a sentence-pair task among `specs` ({task: head spec}) whose labels the
    loss can read; else a one-line error naming the flag (checked before training: the loss would otherwise fail
    at its first step, or train on labels read the wrong way)."""
    name = EMBEDDING_LOSSES[loss]
    spec = specs.get(task)
    if spec is None or spec["pair_encoding"] == "single":
        pairs = [other for other, s in specs.items() if s["pair_encoding"] != "single"]
        raise ValueError(f"--{loss}_task {task}: {name} needs a sentence-pair task among the training tasks "
                         f"({', '.join(pairs) or 'none'})")
    if spec["kind"] not in EMBEDDING_LOSS_KINDS[loss]:
        raise ValueError(f"--{loss}_task {task}: {name} reads {' or '.join(EMBEDDING_LOSS_KINDS[loss])} labels, and "
                         f"{task}'s head is {spec['kind']}")


def multiple_negatives_ranking_loss(
    anchors: Tensor,
    positives: Tensor,
    *,
    scale: float = 20.0,
    symmetric: bool = False,
    extra_negatives: Optional[Tensor] = None,
    false_negative_mask: Optional[Tensor] = None,
    anchor_rows: Optional[slice] = None,
) -> Tensor:
    """MNR loss of `anchors` (B, H) against `positives` (B, H), row i of each being a positive pair.

    Args:
        scale: multiplies the cosine similarities (1 / temperature; 20 as in sentence-transformers).
        symmetric: average with the reverse direction (each positive picks its anchor among all anchors;
            extra negatives take part only in the forward direction).
        extra_negatives: (E, H) further candidates for every anchor, e.g. hard negatives.
        false_negative_mask: bool (B, B + E); True drops candidate j from anchor i's softmax (a known
            paraphrase). The diagonal must be False. The reverse direction uses the transpose of its
            first B columns. `false_negative_mask()` builds it from sentence keys.
        anchor_rows: the anchors whose part of the loss to return (default all): a rank's own rows of a batch
            gathered from every rank, each ranking every rank's candidates.

    Returns the mean over all anchors, or with `anchor_rows` those anchors' part of it (their sum over B, so that
    the parts of a partition add up to the mean); without anchors a zero that still depends on the inputs (so
    every rank's backward reaches the same parameters).
    """
    _check_embeddings(anchors, positives, extra_negatives)
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    num_pairs = anchors.shape[0]
    candidates = positives if extra_negatives is None else torch.cat([positives, extra_negatives])
    if false_negative_mask is not None:
        _check_mask(false_negative_mask, num_pairs, candidates.shape[0])
    rows = slice(0, num_pairs) if anchor_rows is None else anchor_rows
    targets = torch.arange(num_pairs, device=anchors.device)[rows]
    if targets.numel() == 0:
        return (anchors.sum() + candidates.sum()) * 0.0

    with torch.autocast(device_type=anchors.device.type, enabled=False):
        anchors, candidates = F.normalize(anchors.float(), dim=-1), F.normalize(candidates.float(), dim=-1)
        scores = scale * anchors[rows] @ candidates.T
        if false_negative_mask is not None:
            scores = scores.masked_fill(false_negative_mask[rows].to(scores.device), float("-inf"))
        loss = F.cross_entropy(scores, targets, reduction="sum")
        if symmetric:
            # Positive i scored against every anchor: row i of the transpose of the mask's first B columns.
            reverse = scale * candidates[:num_pairs][rows] @ anchors.T
            if false_negative_mask is not None:
                reverse = reverse.masked_fill(false_negative_mask[:, :num_pairs].T[rows].to(scores.device), float("-inf"))
            loss = (loss + F.cross_entropy(reverse, targets, reduction="sum")) / 2
    return loss / num_pairs


def cosent_loss(embeddings_a: Tensor, embeddings_b: Tensor, labels: Tensor, *, scale: float = 20.0,
                gather_across_devices: bool = False) -> Tensor:
    """CoSENT loss of the pairs (embeddings_a[i], embeddings_b[i]) with graded `labels` (B,) (module docstring).

    A batch without two different labels has no ordered pair: the loss is log(1) = 0, still depending on the
    inputs (so every rank's backward reaches the same parameters). `gather_across_devices`: under data
    parallelism, every rank orders the pairs of all ranks (`trainers/gathering.py`).
    """
    _check_embeddings(embeddings_a, embeddings_b, None)
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if labels.shape != embeddings_a.shape[:1]:
        raise ValueError(f"labels must have shape ({embeddings_a.shape[0]},), got {tuple(labels.shape)}")
    with torch.autocast(device_type=embeddings_a.device.type, enabled=False):
        cosines = scale * F.cosine_similarity(embeddings_a.float(), embeddings_b.float(), dim=-1)
        if gather_across_devices:
            (pairs,), _ = gather_parts(torch.stack([cosines, labels.to(cosines.dtype)], dim=1))
            cosines, labels = pairs.unbind(1)
        # differences[i, j] = scale * (cos_j - cos_i), counted where pair i's label is above pair j's
        differences = cosines[None, :] - cosines[:, None]
        ordered = labels[:, None] > labels[None, :]
        terms = torch.cat([differences.new_zeros(1), differences[ordered]])  # the zero is the "1 +"
        return torch.logsumexp(terms, dim=0) + differences.sum() * 0.0


def paraphrase_mnr_loss(
    embeddings_a: Tensor,
    embeddings_b: Tensor,
    labels: Tensor,
    *,
    scale: float = 20.0,
    symmetric: bool = False,
    keys_a: Optional[Sequence[Hashable]] = None,
    keys_b: Optional[Sequence[Hashable]] = None,
    use_non_paraphrases: bool = True,
    gather_across_devices: bool = False,
) -> Tensor:
    """MNR loss over a batch of sentence pairs with binary labels (1 = paraphrase).

    The paraphrase pairs are the anchor/positive pairs; with `use_non_paraphrases`, both sentences of the
    other pairs are extra negatives. `keys_a` / `keys_b` (one hashable per pair and side, e.g. from
    `sentence_keys`) mask candidates that are the same sentence as a member of the anchor's paraphrase
    group. A batch without a paraphrase pair gives a zero that depends on the embeddings.
    `gather_across_devices`: under data parallelism, each rank's anchors rank the candidates of every rank
    (`trainers/gathering.py`), and each rank's loss is its anchors' part of the whole batch's mean times the
    number of ranks, so that DDP's mean over the ranks trains on the whole batch's mean however the ranks' anchors
    are shared out.
    """
    if labels.ndim != 1 or labels.shape[0] != embeddings_a.shape[0]:
        raise ValueError(
            f"labels must have shape ({embeddings_a.shape[0]},) to match the embeddings, got {tuple(labels.shape)}"
        )
    if not torch.all((labels == 0) | (labels == 1)):
        raise ValueError(f"paraphrase labels must be 0 or 1, got values {sorted(set(labels.tolist()))}")
    if (keys_a is None) != (keys_b is None):
        raise ValueError("pass both keys_a and keys_b, or neither")
    is_pair = labels == 1
    anchors, positives = embeddings_a[is_pair], embeddings_b[is_pair]
    others = ~is_pair if use_non_paraphrases else torch.zeros_like(is_pair)
    extra = torch.cat([embeddings_a[others], embeddings_b[others]])
    keys = None
    if keys_a is not None:
        for name, side_keys in (("keys_a", keys_a), ("keys_b", keys_b)):
            if len(side_keys) != len(labels):
                raise ValueError(f"{name} has {len(side_keys)} entries for {len(labels)} pairs")
        pairs, other = is_pair.tolist(), others.tolist()
        keys = ([k for k, p in zip(keys_a, pairs) if p], [k for k, p in zip(keys_b, pairs) if p],
                [k for k, o in zip(keys_a, other) if o] + [k for k, o in zip(keys_b, other) if o])
    anchor_rows, ranks = None, 1
    if gather_across_devices:
        (anchors, positives, extra), counts = gather_parts(anchors, positives, extra)
        start, ranks = sum(rank_counts[0] for rank_counts in counts[: rank()]), len(counts)
        anchor_rows = slice(start, start + counts[rank()][0])
        keys = None if keys is None else tuple(gather_objects(part) for part in keys)
    mask = None if keys is None else false_negative_mask(*keys)
    return ranks * multiple_negatives_ranking_loss(
        anchors,
        positives,
        scale=scale,
        symmetric=symmetric,
        extra_negatives=extra if use_non_paraphrases else None,
        false_negative_mask=mask,
        anchor_rows=anchor_rows,
    )


def false_negative_mask(
    anchor_keys: Sequence[Hashable],
    positive_keys: Sequence[Hashable],
    extra_keys: Optional[Sequence[Hashable]] = None,
) -> Tensor:
    """Bool (B, B + E): True where candidate j is a known paraphrase of anchor i other than its own positive.

    Sentences are grouped transitively: anchor i and positive i are one group, and equal keys are the same
    sentence. Candidate j (positive j, or extra j - B) is masked for anchor i when it belongs to anchor i's
    group and j != i. The mask's first B columns are symmetric, so the reverse direction can use it too.
    """
    if len(anchor_keys) != len(positive_keys):
        raise ValueError(f"{len(anchor_keys)} anchor keys but {len(positive_keys)} positive keys")
    groups = _paraphrase_groups(anchor_keys, positive_keys)
    query_group = [groups[k] for k in anchor_keys]
    candidate_group = [groups[k] for k in positive_keys] + [groups.get(k, -1) for k in (extra_keys or [])]
    query = torch.tensor(query_group, dtype=torch.long).unsqueeze(1)
    mask = query == torch.tensor(candidate_group, dtype=torch.long).unsqueeze(0)
    mask[:, : len(anchor_keys)].fill_diagonal_(False)
    return mask


def sentence_keys(input_ids: Tensor, attention_mask: Tensor) -> list[tuple[int, ...]]:
    """One hashable key per row: the row's attended token ids (equal sentences get equal keys)."""
    if input_ids.shape != attention_mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} differ")
    return [tuple(ids[mask.bool()].tolist()) for ids, mask in zip(input_ids.cpu(), attention_mask.cpu())]


def _paraphrase_groups(anchor_keys, positive_keys) -> dict:
    """Union-find over sentence keys: each anchor/positive pair joins its two sentences' groups."""
    parent: dict = {}

    def root(key):
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for a, p in zip(anchor_keys, positive_keys):
        parent[root(a)] = root(p)
    roots: dict = {}
    return {key: roots.setdefault(root(key), len(roots)) for key in list(parent)}


def _check_embeddings(anchors: Tensor, positives: Tensor, extra: Optional[Tensor]) -> None:
    if anchors.ndim != 2 or anchors.shape != positives.shape:
        raise ValueError(
            f"anchors and positives must both be (B, H), got {tuple(anchors.shape)} and {tuple(positives.shape)}"
        )
    if extra is not None and (extra.ndim != 2 or extra.shape[1] != anchors.shape[1]):
        raise ValueError(f"extra_negatives must be (E, {anchors.shape[1]}), got {tuple(extra.shape)}")


def _check_mask(mask: Tensor, num_pairs: int, num_candidates: int) -> None:
    if mask.dtype != torch.bool or tuple(mask.shape) != (num_pairs, num_candidates):
        raise ValueError(
            f"false_negative_mask must be a bool tensor of shape ({num_pairs}, {num_candidates}), "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    if mask[:, :num_pairs].diagonal().any():
        raise ValueError("false_negative_mask masks an anchor's own positive (its diagonal must be False)")
