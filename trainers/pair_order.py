"""Pair-order augmentation: a cross-encoded sentence pair read the other way round.

Paraphrase and similarity are symmetric, but a cross-encoder reads "[CLS] a [SEP] b [SEP]" with segment and
position embeddings that tell a from b, so its answer for (a, b) need not be its answer for (b, a). Training
on each pair in a random order, drawn afresh every time the pair is read, shows the model both orders of the
same data at no extra cost a step.

The swap rewrites the padded batch itself: "[CLS] a [SEP] b [SEP]" becomes "[CLS] b [SEP] a [SEP]" with
segment ids 0 for "[CLS] b [SEP]" and 1 for "a [SEP]". A row keeps its length, so padding stays where it was.
"""
import hashlib

import torch

SWAP_KEYS = ("input_ids", "token_type_ids", "attention_mask")


def swap_pair_order(input_ids, token_type_ids, attention_mask, rows):
    """(input_ids, token_type_ids) with the two segments of every row where `rows` is True exchanged.

    The rows are right-padded joint sequences: real tokens first (attention_mask 1), segment 0 ("[CLS] a
    [SEP]") then segment 1 ("b [SEP]"). Other rows, and every padding position, come back unchanged.
    """
    width = input_ids.shape[1]
    real = attention_mask.bool()
    length = real.sum(dim=1, keepdim=True)
    first = (real & (token_type_ids == 0)).sum(dim=1, keepdim=True)  # [CLS] a [SEP]
    second = length - first  # b [SEP]
    position = torch.arange(width, device=input_ids.device).expand_as(input_ids)
    # Position 0 keeps [CLS]; 1 .. second read b [SEP]; second + 1 .. length − 1 read a [SEP]; padding stays.
    source = torch.where(position <= second, first + position - 1, position - second)
    source = torch.where((position == 0) | ~real, position, source)
    swapped_ids = input_ids.gather(1, source)
    swapped_types = torch.where(real, (position > second).to(token_type_ids.dtype), token_type_ids)
    rows = rows.to(input_ids.device)[:, None]
    return torch.where(rows, swapped_ids, input_ids), torch.where(rows, swapped_types, token_type_ids)


def check_swappable(task, pair_encoding):
    """A task whose head reads `pair_encoding` inputs can have its pairs swapped: only a cross-encoded pair can."""
    if pair_encoding != "cross":
        raise ValueError(f"--pair_swap_probability {task}: only a cross-encoded sentence pair has an order to swap; "
                         f"{task}'s head reads {pair_encoding!r} inputs")


def check_right_padded_pairs(batch, task):
    """The batch is what `swap_pair_order` can rewrite: a joint sequence with segment ids, right-padded."""
    missing = [key for key in SWAP_KEYS if key not in batch]
    if missing:
        raise ValueError(f"--pair_swap_probability {task}: its batches are not cross-encoded pairs (no {', '.join(missing)})")
    real = batch["attention_mask"].bool()
    if bool((real[:, 1:] & ~real[:, :-1]).any()):
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
