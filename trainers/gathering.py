"""Gathering a batch's sentence embeddings from every data-parallel rank, so that an embedding loss (MNR,
CoSENT) ranks the whole global batch rather than each rank's share of it: with 8 ranks an MNR anchor meets
eight times the negatives (sentence-transformers' `gather_across_devices`).

The gradient of the gathered rows reaches each rank's own rows from every rank's loss (the rows are summed
over the ranks in backward), so after DDP averages the gradients a loss that every rank computes over the
whole gathered batch trains as one process would on that batch. Ranks may hold different numbers of rows
(the paraphrase pairs of a batch vary): each rank's rows are padded to the largest count for the collective
and the padding dropped after it.
"""
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor


def several_ranks() -> bool:
    """Whether a process group of more than one rank is running (gathering is a no-op otherwise)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllGatherRows(torch.autograd.Function):
    """all_gather of one equally shaped tensor per rank, concatenated in rank order. Backward sums the
    gathered gradient over the ranks with all_reduce (gloo has no reduce_scatter) and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, rows):
        chunks = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
        dist.all_gather(chunks, rows.contiguous())
        ctx.rows = rows.shape[0]
        return torch.cat(chunks)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()  # all_reduce writes in place; autograd may still hold the incoming buffer
        dist.all_reduce(grad)
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def gather_parts(*parts: Tensor) -> tuple[list[Tensor], list[list[int]]]:
    """Every rank's `parts` (tensors of rows with one trailing shape), part by part in rank order.

    Returns (for each part, all ranks' rows of it concatenated; counts[rank][part], the rows each rank gave).
    One collective carries all parts, so every rank's backward runs the same single collective whatever its
    counts. Without several ranks: the parts as given.
    """
    if not several_ranks():
        return list(parts), [[part.shape[0] for part in parts]]
    local = torch.cat(parts)
    counts = _all_counts([part.shape[0] for part in parts], local.device)
    width = max(1, max(sum(rank_counts) for rank_counts in counts))  # one row at least: empty collectives vary by backend
    padding = local.new_zeros((width - local.shape[0], *local.shape[1:]))
    gathered = _AllGatherRows.apply(torch.cat([local, padding]))
    per_rank = [chunk.split(rank_counts + [width - sum(rank_counts)]) for chunk, rank_counts in
                zip(gathered.split(width), counts)]
    return [torch.cat([pieces[i] for pieces in per_rank]) for i in range(len(parts))], counts


def gather_objects(items: Sequence) -> list:
    """Every rank's `items` (picklable, e.g. sentence keys) concatenated in rank order."""
    if not several_ranks():
        return list(items)
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, list(items))
    return [item for rank_items in everyone for item in rank_items]


def rank() -> int:
    return dist.get_rank() if several_ranks() else 0


def _all_counts(local_counts: list[int], device) -> list[list[int]]:
    mine = torch.tensor(local_counts, dtype=torch.long, device=device)
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, mine)
    return [counts.tolist() for counts in everyone]
