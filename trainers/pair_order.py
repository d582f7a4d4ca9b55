"""Pair-order augmentation: a cross-encoded sentence pair read the other way round.

Paraphrase and similarity are symmetric, but a cross-encoder reads "[CLS] a [SEP] b [SEP]" with segment and
position embeddings that tell a from b, so its answer for (a, b) need not be its answer for (b, a). Training
on each pair in a random order, drawn afresh every time the pair is read, shows the model both orders of the
same data at no extra cost a step.

The swap itself (`swap_pair_order`) is the model's own, so that what training reads swapped is what a model
with `average_pair_orders` reads at prediction time (hf_minbert/modeling_minbert_pair_order.py).
"""
import hashlib

import torch

from hf_minbert.modeling_minbert_pair_order import right_padding_error, swap_pair_order

SWAP_KEYS = ("input_ids", "token_type_ids", "attention_mask")


def check_pair_order(flag, task, pair_encoding):
    """`--flag task` (pair swapping, order averaging) needs a head that reads the pair in an order: a
    cross-encoded one."""
    if pair_encoding != "cross":
        raise ValueError(f"--{flag} {task}: only a cross-encoded sentence pair has an order to swap or average "
                         f"over; {task}'s head reads {pair_encoding!r} inputs")


def check_right_padded_pairs(batch, task):
    """The batch is what `swap_pair_order` can rewrite: a joint sequence with segment ids, right-padded."""
    missing = [key for key in SWAP_KEYS if key not in batch]
    if missing:
        raise ValueError(f"--pair_swap_probability {task}: its batches are not cross-encoded pairs (no {', '.join(missing)})")
    if right_padding_error(batch["attention_mask"]):
        raise ValueError(f"--pair_swap_probability {task}: the tokenizer pads on the left; pair-order swapping "
                         "needs right padding (tokenizer.padding_side = 'right')")


def pair_order_generator(seed, step, task, batch_in_step=0):
    """The generator of one batch's swap draws: a function of the run's seed, the optimizer step, the task and
    the batch's place within the step, so a run resumed from a checkpoint draws what the uninterrupted run drew."""
    key = f"{seed}/{step}/{task}/{batch_in_step}".encode()
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))


def randomly_swapped(batch, task, probability, generator):
    """`batch` with each row's pair swapped with `probability` (a new dict; the input is left as it is)."""
    check_right_padded_pairs(batch, task)
    rows = torch.rand(batch["input_ids"].shape[0], generator=generator) < probability
    if not bool(rows.any()):
        return batch
    input_ids, token_type_ids = swap_pair_order(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], rows)
    return {**batch, "input_ids": input_ids, "token_type_ids": token_type_ids}
