"""Pair-order augmentation: a cross-encoded sentence pair read the other way round.

Paraphrase and similarity are symmetric, but a cross-encoder reads "[CLS] a [SEP] b [SEP]" with segment and
position embeddings that tell a from b, so its answer for (a, b) need not be its answer for (b, a). Training
on each pair in a random order, drawn afresh every time the pair is read, shows the model both orders of the
same data at no extra cost a step.

The swap itself (`both_orders`) is the model's own, so that what training reads swapped is what a model
with `average_pair_orders` reads at prediction time (hf_minbert/modeling_minbert_pair_order.py).
"""
import hashlib

import torch

from hf_minbert.data import has_task_schema, task_schema
from hf_minbert.modeling_minbert_pair_order import both_orders


def check_pair_order(flag, task, pair_encoding):
    """`--flag task` (pair swapping, order averaging) needs a head that reads the pair in an order: a
    cross-encoded one; and a task whose label does not depend on that order (its data schema is symmetric)."""
    if pair_encoding != "cross":
        raise ValueError(f"--{flag} {task}: only a cross-encoded sentence pair has an order to swap or average "
                         f"over; {task}'s head reads {pair_encoding!r} inputs")
    if has_task_schema(task) and not task_schema(task).symmetric:
        raise ValueError(f"--{flag} {task}: {task}'s label depends on the order of its sentences (its data schema "
                         "is not symmetric): (b, a) is another example than (a, b)")


def pair_order_generator(seed, step, task, batch_in_step=0, rank=0):
    """The generator of one batch's swap draws: a function of the run's seed, the optimizer step, the task and
    the batch's place within the step, so a run resumed from a checkpoint draws what the uninterrupted run drew;
    and of the data-parallel rank, whose rows are others (rank 0 draws what a single process draws)."""
    key = f"{seed}/{step}/{task}/{batch_in_step}".encode() + (f"/{rank}".encode() if rank else b"")
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))


def randomly_swapped(batch, task, probability, generator):
    """`batch` with each row's pair swapped with `probability` (a new dict; the input is left as it is)."""
    try:
        swapped = both_orders(batch)  # also checks that the batch has an order to swap
    except ValueError as error:
        raise ValueError(f"--pair_swap_probability {task}: {error}") from None
    rows = torch.rand(batch["input_ids"].shape[0], generator=generator) < probability
    if not bool(rows.any()):
        return batch
    rows = rows.to(batch["input_ids"].device)[:, None]
    return {**batch, **{key: torch.where(rows, swapped[key], batch[key]) for key in ("input_ids", "token_type_ids")}}
