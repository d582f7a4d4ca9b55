"""How much of the encoder minBERT's tasks share: one encoder variant per architecture, picked once when the
model is built (`encoder_variant`). Part of minBERT's remote code (see `modeling_minbert.py`): imports only
torch, transformers and the files beside it.

    MinBertSharedEncoder      every task reads one encoder, `bert` (the plain multitask model)
    MinBertCerBERTusEncoder   `bert` runs the lower layers once; each task runs its own top layers and pooler
    MinBertTripleEncoder      each task has a whole encoder of its own (Triple-BERT); there is no `bert`
    MinBertWithStaticEncoder  any of the above, plus a frozen static encoder whose output the heads also read

A variant holds no weights. The model holds them under the checkpoint names the variant builds (`bert.*`,
`task_encoders.<task>.*`, `static_bert.*`), so that checkpoints, PEFT and the optimizer see one model; the
variant says how those modules run, and is handed the model on every call, so a module replaced on the model
(a PEFT wrapper) is the one that runs.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .modeling_minbert_heads import check_task, pooled_features
from .modeling_minbert_layers import MinBertPooler, MinBertTopLayers
from .modeling_minbert_unpadding import MinBertTokenLayout, products_in_bf16, recording_graph

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "inputs_embeds", "position_ids")


class MinBertTaskEncoder(nn.Module):
    """One task's own top layers and pooler (CerBERTus, seed 002), run on the output of the shared lower layers.
    Below `task_encoders.<task>.` the parameter names are those of the BERT parameters they copy
    (`encoder.layer.{i}.*`, `pooler.*`), so a checkpoint's top layers map onto every task's copy by name."""

    def __init__(self, config):
        super().__init__()
        self.encoder = MinBertTopLayers(config, config.num_hidden_layers - config.task_specific_layers)
        self.pooler = MinBertPooler(config)

    def forward(self, shared_output, attention_mask=None, output_attentions=False, output_hidden_states=False):
        shared_states = shared_output.last_hidden_state
        layout = MinBertTokenLayout(attention_mask, *shared_states.shape[:2],
                                    bf16_products=products_in_bf16(self.pooler.dense.weight))
        last_hidden_state, hidden_states, attentions = self.encoder(
            layout.unpad(shared_states), layout, output_attentions, output_hidden_states
        )
        if output_hidden_states:  # the shared layers' states, then this task's (its input is the shared output)
            hidden_states = shared_output.hidden_states + hidden_states[1:]
        if output_attentions:
            attentions = shared_output.attentions + attentions
        return BaseModelOutputWithPooling(last_hidden_state, self.pooler(last_hidden_state), hidden_states, attentions)


@dataclass
class MinBertEncoderOutput(BaseModelOutputWithPooling):
    """A task's encoder output (`MinBertForMultitask.encode_for_tasks`); `static_output`: the static encoder's
    output on the same input, for models with `config.static_encoder`."""

    static_output: Optional[BaseModelOutputWithPooling] = None


class MinBertSharedEncoder:
    """The plain multitask model (task_specific_layers = 0): every task reads the one encoder, `bert`."""

    def build(self, config, encoder_class, static_encoder_class):
        """The model's encoder modules (`bert`, `task_encoders`, `static_bert`; None where absent)."""
        return encoder_class(config), None, None

    def feature_width(self, config):
        """Width of what a single-sentence or cross-encoder head reads."""
        return config.hidden_size

    def encode(self, model, tasks, inputs, flags, static_tasks=()):
        """{task: the encoder output its head reads} for one batch of `inputs` (INPUT_KEYS); each shared module
        runs once for all `tasks`. `static_tasks`: those whose heads also read a static encoder, if any."""
        shared = model.bert(**inputs, **flags)
        return dict.fromkeys(tasks, shared)

    def input_embeddings(self, model, task):
        """The word table whose vectors `inputs_embeds` holds for `task`."""
        return model.bert.get_input_embeddings()

    def set_input_embeddings(self, model, value):
        model.bert.set_input_embeddings(value)

    def task_modules(self, model, task):
        """The encoder modules only `task` uses."""
        return []

    def head_features(self, model, task, encoder_output, attention_mask):
        """What `task`'s single-sentence or cross-encoder head reads from `encoder_output`."""
        return pooled_features(model.config.tasks[task], encoder_output, attention_mask)

    def after_load(self, model):
        """Restore what loading weights undoes (nothing, but for a static encoder)."""


class MinBertCerBERTusEncoder(MinBertSharedEncoder):
    """CerBERTus: `bert` holds the embeddings and the lower L − k layers, shared by every task; each task's own
    top k layers and pooler (`task_encoders.<task>`) run on its output. With k = L `bert` is the embeddings alone."""

    def build(self, config, encoder_class, static_encoder_class):
        num_shared_layers = config.num_hidden_layers - config.task_specific_layers
        # The pooler reads the top layer: it is shared exactly when the top layer is (never, here).
        bert = encoder_class(config, add_pooling_layer=False, num_layers=num_shared_layers)
        return bert, nn.ModuleDict({name: MinBertTaskEncoder(config) for name in config.tasks}), None

    def encode(self, model, tasks, inputs, flags, static_tasks=()):
        shared = model.bert(**inputs, **flags)
        mask = inputs["attention_mask"]
        return {task: model.task_encoders[task](shared, mask, flags["output_attentions"], flags["output_hidden_states"])
                for task in tasks}

    def task_modules(self, model, task):
        return [model.task_encoders[task]]


class MinBertTripleEncoder(MinBertSharedEncoder):
    """Triple-BERT: each task has a whole encoder of its own (`task_encoders.<task>`), word table included."""

    def build(self, config, encoder_class, static_encoder_class):
        return None, nn.ModuleDict({name: encoder_class(config) for name in config.tasks}), None

    def encode(self, model, tasks, inputs, flags, static_tasks=()):
        if inputs["inputs_embeds"] is not None and len(tasks) > 1:
            raise ValueError("inputs_embeds are one task's word vectors here (Triple-BERT): encode one task at a time")
        return {task: model.task_encoders[task](**inputs, **flags) for task in tasks}

    def input_embeddings(self, model, task):
        return model.task_encoders[task].get_input_embeddings()

    def set_input_embeddings(self, model, value):
        raise ValueError(
            "this model (Triple-BERT) has one word table per task: set each one through "
            "model.task_encoders[task].set_input_embeddings"
        )

    def task_modules(self, model, task):
        return [model.task_encoders[task]]


class MinBertWithStaticEncoder:
    """`inner` plus seed 002's static encoder (`static_bert`): single-sentence and cross-encoder heads read its
    pooled output beside their task encoder's, concatenated; bi-encoder heads and the cosine feature do not."""

    def __init__(self, inner):
        self.inner = inner

    def build(self, config, encoder_class, static_encoder_class):
        bert, task_encoders, _ = self.inner.build(config, encoder_class, static_encoder_class)
        return bert, task_encoders, static_encoder_class(config)

    def feature_width(self, config):
        return self.inner.feature_width(config) + config.hidden_size

    def encode(self, model, tasks, inputs, flags, static_tasks=()):
        outputs = self.inner.encode(model, tasks, inputs, flags)
        # The static encoder reads the word vectors the task's encoder read: once per distinct word table.
        static_by_table = {}
        for task in static_tasks:
            table = self.inner.input_embeddings(model, task)
            if id(table) not in static_by_table:
                words = inputs["inputs_embeds"] if inputs["inputs_embeds"] is not None else table(inputs["input_ids"])
                static_by_table[id(table)] = model.static_bert(
                    None, inputs["attention_mask"], inputs["token_type_ids"], inputs["position_ids"], inputs_embeds=words
                )
            outputs[task] = MinBertEncoderOutput(**outputs[task], static_output=static_by_table[id(table)])
        return outputs

    def input_embeddings(self, model, task):
        return self.inner.input_embeddings(model, task)

    def set_input_embeddings(self, model, value):
        self.inner.set_input_embeddings(model, value)

    def task_modules(self, model, task):
        return self.inner.task_modules(model, task)

    def head_features(self, model, task, encoder_output, attention_mask):
        features = self.inner.head_features(model, task, encoder_output, attention_mask)
        static_output = getattr(encoder_output, "static_output", None)
        check_task(static_output is not None, task, "this model has a static encoder: pass the output of encode_for_tasks")
        static_features = pooled_features(model.config.tasks[task], static_output, attention_mask)
        return torch.cat([features, static_features], dim=-1)

    def after_load(self, model):
        # Loading replaces parameters with fresh ones (requires_grad True): the static encoder must stay frozen.
        model.static_bert.requires_grad_(False)
        self.inner.after_load(model)


def encoder_variant(config):
    """The encoder variant `config` describes (its `task_specific_layers`, `task_specific_embeddings` and
    `static_encoder`)."""
    if config.task_specific_embeddings:
        variant = MinBertTripleEncoder()
    elif config.task_specific_layers:
        variant = MinBertCerBERTusEncoder()
    else:
        variant = MinBertSharedEncoder()
    return MinBertWithStaticEncoder(variant) if config.static_encoder else variant


def stack_sides(side_a, side_b, pad_token_id, word_embeddings=None):
    """Pairs given as their two sentences alone -> (sentences, sides) for `MinBertForMultitask.predict`: one
    batch of 2B sentences, and the rows of each pair's two sentences in it (i and B + i).

    `side_a`, `side_b`: (input_ids, attention_mask, inputs_embeds), ids or embeddings. One encoder pass over 2B
    rows is faster than two passes over B, and padding both sides to a common length does not change their
    mean-pooled embeddings. Where a side comes as embeddings, the other side's ids are looked up in
    `word_embeddings` (the task's word table)."""
    (ids_a, mask_a, emb_a), (ids_b, mask_b, emb_b) = side_a, side_b
    first = ids_a if ids_a is not None else emb_a
    second = ids_b if ids_b is not None else emb_b
    _check_sides(first, mask_a, second, mask_b)
    length = _common_length(first.shape[1], second.shape[1])
    mask = torch.cat([_pad_to(_ones_mask(first, mask_a), length), _pad_to(_ones_mask(second, mask_b), length)])
    if ids_a is not None and ids_b is not None:
        ids = torch.cat([_pad_to(ids_a, length, pad_token_id), _pad_to(ids_b, length, pad_token_id)])
        sentences = {"input_ids": ids, "attention_mask": mask}
    else:
        emb_a = emb_a if emb_a is not None else word_embeddings(ids_a)
        emb_b = emb_b if emb_b is not None else word_embeddings(ids_b)
        sentences = {"inputs_embeds": torch.cat([_pad_to(emb_a, length), _pad_to(emb_b, length)]), "attention_mask": mask}
    rows = torch.arange(first.shape[0], device=mask.device)
    return sentences, (rows, rows + first.shape[0])


def _common_length(length_a, length_b):
    """The length both sides are padded to: the longer one's. torch.export keeps max() symbolic; a torch.jit.trace
    graph would keep which side was the longer as a constant, and pad the other by a negative amount (cropping it)
    where the data turn the other way, so there each side is padded by the other's length instead."""
    return length_a + length_b if torch.jit.is_tracing() else torch.sym_max(length_a, length_b)


def _check_sides(first, mask_a, second, mask_b):
    # Pair i is row i of each side: a side missing, or sides of different lengths, would pair the wrong rows.
    for side, rows, mask in (("a", first, mask_a), ("b", second, mask_b)):
        if rows is None:
            raise ValueError(f"a pair's sentences alone need both sides: input_ids_{side} (or inputs_embeds_{side}) "
                             "is missing")
        if mask is not None and tuple(mask.shape) != tuple(rows.shape[:2]):
            raise ValueError(f"attention_mask_{side} has shape {tuple(mask.shape)}, its sentences "
                             f"{tuple(rows.shape[:2])}")
    if first.shape[0] != second.shape[0]:
        raise ValueError(f"side a holds {first.shape[0]} sentences and side b {second.shape[0]}: one of each per pair")


def _ones_mask(ids_like, mask):
    return mask if mask is not None else torch.ones(ids_like.shape[:2], dtype=torch.long, device=ids_like.device)


def _pad_to(tensor, length, value=0):
    """Right-pad dimension 1 of `tensor` to `length`."""
    missing = length - tensor.shape[1]
    if not recording_graph() and missing == 0:
        return tensor
    pad = (0, 0, 0, missing) if tensor.dim() == 3 else (0, missing)
    return F.pad(tensor, pad, value=value)
