"""A cross-encoded sentence pair read the other way round: "[CLS] a [SEP] b [SEP]" as "[CLS] b [SEP] a [SEP]".

Paraphrase and similarity are symmetric, but a cross-encoder's segment and position embeddings tell a from b,
so its answer for (a, b) need not be its answer for (b, a). Two users of the swap:
- `average_pair_orders` (a task spec field): in eval mode the head answers with the mean of its outputs for
  both orders, so the answer no longer depends on the order (`MinBertForMultitask.predict`);
- `--pair_swap_probability` (trainers/pair_order.py): training reads each pair in a random order.

The swap rewrites a right-padded batch in place of the tokenizer: the swapped row has segment ids 0 for
"[CLS] b [SEP]" and 1 for "a [SEP]", keeps its length, and its padding stays where it was. Part of minBERT's
remote code (see `modeling_minbert.py`): imports only torch and the token layout's module.
"""
import torch

from .modeling_minbert_unpadding import recording_graph


def _swapped_positions(token_type_ids, attention_mask):
    """(source, swapped_types) of a batch of right-padded joint sequences, every row swapped: position j of a
    swapped row holds position source[:, j] of the row as given, with segment id swapped_types[:, j]."""
    width = token_type_ids.shape[1]
    real = attention_mask.bool()
    length = real.sum(dim=1, keepdim=True)
    first = (real & (token_type_ids == 0)).sum(dim=1, keepdim=True)  # [CLS] a [SEP]
    second = length - first  # b [SEP]
    position = torch.arange(width, device=token_type_ids.device).expand_as(token_type_ids)
    # Position 0 keeps [CLS]; 1 .. second read b [SEP]; second + 1 .. length − 1 read a [SEP]; padding stays.
    source = torch.where(position <= second, first + position - 1, position - second)
    source = torch.where((position == 0) | ~real, position, source)
    swapped_types = torch.where(real, (position > second).to(token_type_ids.dtype), token_type_ids)
    return source, swapped_types


def both_orders(pairs):
    """The cross-encoded `pairs` (a dict of input_ids or inputs_embeds, attention_mask and token_type_ids)
    read the other way round, every row swapped. Raises ValueError where the batch has no order to find."""
    token_type_ids = pairs.get("token_type_ids")
    if token_type_ids is None:
        raise ValueError("reading pairs in both orders needs their token_type_ids (which tokens are the second sentence)")
    attention_mask = pairs.get("attention_mask")
    if attention_mask is None:
        attention_mask = torch.ones_like(token_type_ids)
    real = attention_mask.bool()
    padding_first = (real[:, 1:] & ~real[:, :-1]).any()
    message = "the pairs have padding before a real token; reading them in both orders needs right padding"
    if recording_graph():  # a graph cannot branch on the data: torch.export keeps the check as a runtime assert
        torch._assert_async(~padding_first, message)
    elif bool(padding_first):
        raise ValueError(message)
    source, swapped_types = _swapped_positions(token_type_ids, attention_mask)
    swapped = {**pairs, "token_type_ids": swapped_types}
    if pairs.get("input_ids") is not None:
        swapped["input_ids"] = pairs["input_ids"].gather(1, source)
    else:
        embeds = pairs["inputs_embeds"]
        swapped["inputs_embeds"] = embeds.gather(1, source[..., None].expand_as(embeds))
    return swapped
