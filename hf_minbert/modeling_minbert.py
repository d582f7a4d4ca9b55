"""minBERT: a BERT encoder written from scratch, with multitask heads.

This file travels to the Hub as remote code: it imports only torch, transformers and
`configuration_minbert`. Module and parameter names follow transformers' `modeling_bert.py`
(`bert.encoder.layer.{i}.attention.self.query`, ...) so that any standard BERT checkpoint loads into
minBERT with no key mapping beyond the one `from_pretrained` already does for a base-model prefix.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_minbert import MinBertConfig, num_task_outputs


# ----------------------------------------------------------------------------------------------------------
# Encoder
# ----------------------------------------------------------------------------------------------------------


class MinBertTokenLayout:
    """Where the real tokens of a padded (batch, length) batch sit, so that per-token work skips padding.

    Everything in a layer except attention itself (projections, feed-forward, LayerNorm, dropout, GELU) acts
    on each token alone, so the encoder carries hidden states as a (real tokens, hidden) matrix and re-pads
    only around `scaled_dot_product_attention`. Sentence batches padded to their longest row are often half
    padding, and padding would otherwise cost as much as words (ModernBERT unpads the same way). Positions
    with attention_mask 0 are never computed: their returned hidden states are zeros.
    """

    def __init__(self, attention_mask, batch, length):
        self.batch, self.length = batch, length
        self.rows = self.cols = self.sdpa_mask = None
        if attention_mask is not None:
            if attention_mask.shape != (batch, length):
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}; expected {(batch, length)}, "
                    "one 1/0 entry per input token"
                )
            rows, cols = attention_mask.nonzero(as_tuple=True)
            if rows.numel() < batch * length:
                # (B, 1, 1, L) boolean mask, True = attend; None (no padding) lets SDPA take its fastest kernel.
                self.rows, self.cols = rows, cols
                self.sdpa_mask = attention_mask.bool()[:, None, None, :]

    def unpad(self, padded):
        """(batch, length, ...) -> (real tokens, ...), in row-major order."""
        if self.rows is None:
            return padded.reshape(self.batch * self.length, *padded.shape[2:])
        return padded[self.rows, self.cols]

    def pad(self, tokens):
        """(real tokens, ...) -> (batch, length, ...), zeros at padding."""
        if self.rows is None:
            return tokens.view(self.batch, self.length, *tokens.shape[1:])
        padded = tokens.new_zeros(self.batch, self.length, *tokens.shape[1:])
        return padded.index_put((self.rows, self.cols), tokens)


class MinBertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm and dropout (applied once, also for
    `inputs_embeds`: a perturbation of word embeddings goes through the same normalisation as words).
    Returns the real tokens only, (tokens, hidden), as laid out by `layout`."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, layout, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        seq_length = inputs_embeds.shape[1]
        if position_ids is None:
            position_ids = torch.arange(seq_length, device=inputs_embeds.device).unsqueeze(0)
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        if token_type_ids is None:
            # Row 0 of the type table broadcasts: the same as all-zero token types without building them.
            embeddings = embeddings + self.token_type_embeddings.weight[0]
        else:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(layout.unpad(embeddings)))


class MinBertSelfAttention(nn.Module):
    """Multi-head self-attention on `scaled_dot_product_attention`, over the real tokens of `layout` (padded
    only for the attention product itself).

    query/key/value stay separate Linear modules (checkpoint names, and what PEFT wraps), but when all
    three are plain Linears their weights are concatenated so the projection is one matmul instead of
    three: on CPU one wide GEMM is markedly faster than three narrow ones.
    """

    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob

    def _project_qkv(self, hidden_states, layout):
        heads = (self.num_heads, self.head_dim)
        if all(type(m) is nn.Linear for m in (self.query, self.key, self.value)):
            weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
            bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
            qkv = layout.pad(F.linear(hidden_states, weight, bias).unflatten(-1, (3, *heads)))
            return qkv.permute(2, 0, 3, 1, 4).unbind(0)
        # Wrapped projections (e.g. LoRA): call each module so the wrapper's own computation runs.
        return tuple(
            layout.pad(m(hidden_states).unflatten(-1, heads)).transpose(1, 2)
            for m in (self.query, self.key, self.value)
        )

    def forward(self, hidden_states, layout, output_attentions=False):
        query, key, value = self._project_qkv(hidden_states, layout)
        dropout = self.dropout_prob if self.training else 0.0
        if output_attentions:
            context, probs = self._attention_with_probs(query, key, value, layout.sdpa_mask, dropout)
        else:
            context = F.scaled_dot_product_attention(query, key, value, attn_mask=layout.sdpa_mask, dropout_p=dropout)
            probs = None
        return layout.unpad(context.transpose(1, 2)).flatten(1), probs

    @staticmethod
    def _attention_with_probs(query, key, value, attention_mask, dropout):
        # SDPA does not return the attention matrix, so the explicit path is used only when it is asked for.
        scores = query @ key.transpose(-1, -2) * query.shape[-1] ** -0.5
        if attention_mask is not None:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        probs = scores.softmax(dim=-1)
        return F.dropout(probs, p=dropout) @ value, probs


class MinBertSelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class MinBertAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self = MinBertSelfAttention(config)
        self.output = MinBertSelfOutput(config)

    def forward(self, hidden_states, layout, output_attentions=False):
        context, probs = self.self(hidden_states, layout, output_attentions)
        return self.output(context, hidden_states), probs


class MinBertIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class MinBertOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class MinBertLayer(GradientCheckpointingLayer):
    """Post-LayerNorm transformer layer: attention, residual, LayerNorm; GELU feed-forward, residual,
    LayerNorm (the original BERT ordering, which pretrained checkpoints require)."""

    def __init__(self, config):
        super().__init__()
        self.attention = MinBertAttention(config)
        self.intermediate = MinBertIntermediate(config)
        self.output = MinBertOutput(config)

    def forward(self, hidden_states, layout, output_attentions=False):
        attention_output, probs = self.attention(hidden_states, layout, output_attentions)
        return self.output(self.intermediate(attention_output), attention_output), probs


class MinBertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([MinBertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, layout, output_attentions=False, output_hidden_states=False):
        """`hidden_states`: the real tokens, (tokens, hidden). Returns the last hidden states padded back to
        (batch, length, hidden), and every layer's too when asked for."""
        all_hidden_states = (layout.pad(hidden_states),) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layer:
            hidden_states, probs = layer(hidden_states, layout, output_attentions)
            if output_hidden_states:
                all_hidden_states += (layout.pad(hidden_states),)
            if output_attentions:
                all_attentions += (probs,)
        last_hidden_state = all_hidden_states[-1] if output_hidden_states else layout.pad(hidden_states)
        return last_hidden_state, all_hidden_states, all_attentions


class MinBertPooler(nn.Module):
    """tanh(W · h_[CLS] + b), BERT's next-sentence pooler."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))


def mean_pool(last_hidden_state, attention_mask):
    """Mean of the token vectors over non-padding positions (sentence-transformers' pooling)."""
    if attention_mask is None:
        return last_hidden_state.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class MinBertPreTrainedModel(PreTrainedModel):
    config_class = MinBertConfig
    base_model_prefix = "bert"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # forward() takes no **kwargs and returns a per-batch mean loss: Trainer must scale it itself.
    accepts_loss_kwargs = False
    _no_split_modules = ["MinBertLayer"]

    @torch.no_grad()
    def _init_weights(self, module):
        cosine_init = getattr(module, "cosine_init", None)
        fresh = cosine_init is not None and not getattr(module.weight, "_is_hf_initialized", False)
        super()._init_weights(module)
        if fresh:
            module.weight[:, -1] = cosine_init[0]
            module.bias.fill_(cosine_init[1])
        if isinstance(module, MinBertCosineLogit):
            init.constant_(module.scale, MinBertCosineLogit.INITIAL_SCALE)
            init.constant_(module.threshold, MinBertCosineLogit.INITIAL_THRESHOLD)

    def save_pretrained(self, save_directory, *args, **kwargs):
        # One folder must resolve for AutoModel *and* AutoModelForSequenceClassification (the stock
        # text-classification pipeline loads through the latter), both to the class that was saved.
        class_path = f"modeling_minbert.{type(self).__name__}"
        self.config.auto_map = {
            "AutoConfig": "configuration_minbert.MinBertConfig",
            "AutoModel": class_path,
            "AutoModelForSequenceClassification": class_path,
        }
        # The pipelines travel with every saved model, also when a remote-code copy is fine-tuned and saved
        # again: config.json names them, and this relative import makes the save copy pipelines.py too.
        from .pipelines import attach_pipelines

        attach_pipelines(self)
        return super().save_pretrained(save_directory, *args, **kwargs)


class MinBertModel(MinBertPreTrainedModel):
    """The bare minBERT encoder: last hidden states and the tanh-pooled [CLS] vector.

    Padding positions (attention_mask 0) are skipped, not computed: their hidden states come back as zeros,
    where transformers' BertModel returns values no real token ever attends to.
    """

    def __init__(self, config, add_pooling_layer=True):
        super().__init__(config)
        self.embeddings = MinBertEmbeddings(config)
        self.encoder = MinBertEncoder(config)
        self.pooler = MinBertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        return_dict = self.config.return_dict if return_dict is None else return_dict
        ids_like = input_ids if input_ids is not None else inputs_embeds[..., 0]
        _check_lengths(self.config, ids_like)

        layout = MinBertTokenLayout(attention_mask, *ids_like.shape)
        hidden_states = self.embeddings(layout, input_ids, token_type_ids, position_ids, inputs_embeds)
        sequence_output, all_hidden_states, all_attentions = self.encoder(
            hidden_states, layout, output_attentions, output_hidden_states
        )
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None
        if not return_dict:
            outputs = (sequence_output, pooled_output, all_hidden_states, all_attentions)
            return tuple(o for o in outputs if o is not None)
        return BaseModelOutputWithPooling(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


def _check_lengths(config, ids_like):
    if ids_like.dim() != 2:
        raise ValueError(f"expected inputs of shape (batch, sequence_length), got {tuple(ids_like.shape)}")
    if ids_like.shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"sequence length {ids_like.shape[1]} exceeds max_position_embeddings="
            f"{config.max_position_embeddings}: truncate the input"
        )


# ----------------------------------------------------------------------------------------------------------
# Task heads
# ----------------------------------------------------------------------------------------------------------


class MinBertTaskHead(nn.Module):
    """`head_layers` Linear layers: (dropout, Linear(·, hidden), activation) × (depth − 1), then dropout and
    the output Linear. With `cosine_feature` the input gains one last feature, cos(u, v) of the separately
    encoded sentences; a one-layer regression or binary head then starts out as the bi-encoder's own
    cosine mapping (see `cosine_feature_init`), so fine-tuning refines a strong start instead of finding it."""

    def __init__(self, config, spec, in_features):
        super().__init__()
        dropout = config.hidden_dropout_prob if spec["head_dropout"] is None else spec["head_dropout"]
        self.cosine_feature = bool(spec["cosine_feature"])
        layers, width = [], in_features + int(self.cosine_feature)
        for _ in range(int(spec["head_layers"]) - 1):
            layers += [nn.Dropout(dropout), nn.Linear(width, config.hidden_size), ACT2FN[spec["head_activation"]]]
            width = config.hidden_size
        layers += [nn.Dropout(dropout), nn.Linear(width, num_task_outputs(spec))]
        self.layers = nn.Sequential(*layers)
        if self.cosine_feature and spec["head_layers"] == 1:
            # Read by _init_weights when it initializes this Linear (and only then: loaded weights stay).
            self.layers[-1].cosine_init = cosine_feature_init(spec)

    def forward(self, features, cosine=None):
        if self.cosine_feature:
            features = torch.cat([features, cosine.unsqueeze(-1).to(features.dtype)], dim=-1)
        return self.layers(features)


def cosine_feature_init(spec):
    """(weight on cos, bias) that make a one-layer head reproduce the bi-encoder mapping at the start:
    regression low + (high − low)·cos; binary logit scale·(cos − threshold); classification: none."""
    if spec["kind"] == "regression":
        low, high = spec["label_range"]
        return high - low, low
    if spec["kind"] == "binary":
        scale, threshold = MinBertCosineLogit.INITIAL_SCALE, MinBertCosineLogit.INITIAL_THRESHOLD
        return scale, -scale * threshold
    return None


class MinBertCosineLogit(nn.Module):
    """Binary bi-encoder head: logit = scale · (cos − threshold), both learned. Initialised so that the
    decision boundary sits at cos = 0.75, where paraphrases from a sentence-embedding model start."""

    INITIAL_SCALE = 20.0
    INITIAL_THRESHOLD = 0.75

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(self.INITIAL_SCALE))
        self.threshold = nn.Parameter(torch.tensor(self.INITIAL_THRESHOLD))

    def forward(self, cosine):
        return self.scale * (cosine - self.threshold)


class MinBertBiEncoderHead(nn.Module):
    """Scores a pair from two separately encoded, mean-pooled sentences u and v.

    `bi_features="cosine"`: regression maps cos ∈ [0, 1] linearly onto the label range (sentence-transformers'
    CosineSimilarityLoss convention: label / max == cos); binary uses a learned scale and threshold.
    `bi_features="concat"`: an MLP head over [u, v, |u − v|, cos] (SBERT's classification objective).
    """

    def __init__(self, config, spec):
        super().__init__()
        self.kind = spec["kind"]
        self.label_range = spec["label_range"]
        self.mlp = None
        self.cosine_logit = None
        if spec["bi_features"] == "concat":
            self.mlp = MinBertTaskHead(config, spec, 3 * config.hidden_size + 1)
        elif self.kind == "binary":
            self.cosine_logit = MinBertCosineLogit()
        elif self.kind == "classification":
            raise ValueError("a bi-encoder classification head needs bi_features='concat'")

    def forward(self, u, v):
        cosine = F.cosine_similarity(u, v, dim=-1)
        if self.mlp is not None:
            return self.mlp(torch.cat([u, v, (u - v).abs(), cosine.unsqueeze(-1)], dim=-1))
        if self.cosine_logit is not None:
            return self.cosine_logit(cosine)
        low, high = self.label_range
        return low + (high - low) * cosine


@dataclass
class MinBertMultitaskOutput(ModelOutput):
    """
    loss: the task's loss when `labels` are given (cross-entropy, BCE-with-logits or MSE).
    logits: (B, num_classes) for classification; (B,) — one logit, or the predicted score on the label
        scale — for binary and regression tasks.
    embeddings_a, embeddings_b: the mean-pooled sentence embeddings of a bi-encoder task.
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    embeddings_a: Optional[torch.FloatTensor] = None
    embeddings_b: Optional[torch.FloatTensor] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


def task_loss(spec, task, logits, labels):
    """The task's loss, after checking that `labels` fit the task (shape and range) with a clear error.

    Classification also accepts soft targets (B, C) that are probability rows, and binary accepts targets
    in [0, 1]: distillation trains on a teacher's probabilities.
    """
    kind = spec["kind"]
    if kind == "classification":
        num_classes = logits.shape[-1]
        if labels.dim() == 2 and labels.is_floating_point():
            _check(labels.shape == logits.shape, task, f"soft labels must have shape {tuple(logits.shape)}")
            _check(bool((labels >= 0).all()) and torch.allclose(labels.sum(-1), labels.new_ones(())), task,
                   "soft labels must be probability rows (non-negative, summing to 1)")
            return F.cross_entropy(logits, labels)
        _check(labels.shape == logits.shape[:1], task, f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
        _check(not labels.is_floating_point() or bool((labels == labels.round()).all()), task, "class labels must be integers")
        labels = labels.long()
        _check(bool(((labels >= 0) & (labels < num_classes)).all()), task,
               f"class labels must lie in [0, {num_classes}), got values {labels.unique().tolist()}")
        return F.cross_entropy(logits, labels)
    labels = labels.reshape(-1) if labels.dim() == 2 and labels.shape[-1] == 1 else labels
    _check(labels.shape == logits.shape, task, f"labels must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
    labels = labels.to(logits.dtype)
    _check(bool(torch.isfinite(labels).all()), task, "labels contain NaN or Inf")
    if kind == "binary":
        _check(bool(((labels >= 0) & (labels <= 1)).all()), task, "binary labels must lie in [0, 1]")
        return F.binary_cross_entropy_with_logits(logits, labels)
    low, high = spec["label_range"]
    _check(bool(((labels >= low) & (labels <= high)).all()), task, f"regression labels must lie in [{low}, {high}]")
    return F.mse_loss(logits, labels)


def _check(condition, task, message):
    if not condition:
        raise ValueError(f"task {task!r}: {message}")


class MinBertForMultitask(MinBertPreTrainedModel):
    """One shared minBERT encoder with one head per task in `config.tasks`.

    `forward(..., task=name)` runs the named head; `task=None` runs `config.default_task`, so the stock
    text-classification pipeline answers with the default head and its label names.
    """

    def __init__(self, config):
        super().__init__(config)
        config.sync_labels_with_default_task()
        self.bert = MinBertModel(config)
        self.heads = nn.ModuleDict(
            {
                name: MinBertBiEncoderHead(config, spec)
                if spec["pair_encoding"] == "bi"
                else MinBertTaskHead(config, spec, config.hidden_size)
                for name, spec in config.tasks.items()
            }
        )
        self.post_init()

    def get_input_embeddings(self):
        return self.bert.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.bert.set_input_embeddings(value)

    def embed(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None):
        """Mean-pooled sentence embeddings (B, H) of single sentences."""
        out = self.bert(input_ids, attention_mask, token_type_ids, inputs_embeds=inputs_embeds)
        return mean_pool(out.last_hidden_state, attention_mask)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        input_ids_a=None,
        attention_mask_a=None,
        input_ids_b=None,
        attention_mask_b=None,
        inputs_embeds=None,
        inputs_embeds_a=None,
        inputs_embeds_b=None,
        task=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        task = self.config.default_task if task is None else task
        spec = self.config.task_spec(task)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if spec["pair_encoding"] == "bi":
            _check(input_ids_a is not None or inputs_embeds_a is not None, task,
                   "a bi-encoder task needs input_ids_a/attention_mask_a and input_ids_b/attention_mask_b")
            u, v = self._encode_pair_separately(
                (input_ids_a, attention_mask_a, inputs_embeds_a), (input_ids_b, attention_mask_b, inputs_embeds_b)
            )
            logits, hidden_states, attentions = self.heads[task](u, v), None, None
        else:
            _check(input_ids is not None or inputs_embeds is not None, task, "needs input_ids (or inputs_embeds)")
            u = v = None
            if spec["cosine_feature"]:
                _check(input_ids_a is not None or inputs_embeds_a is not None, task,
                       "a head with cosine_feature also needs the sentences alone: input_ids_a/_b, attention_mask_a/_b")
                u, v = self._encode_pair_separately(
                    (input_ids_a, attention_mask_a, inputs_embeds_a), (input_ids_b, attention_mask_b, inputs_embeds_b)
                )
            out = self.bert(
                input_ids,
                attention_mask,
                token_type_ids,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
            logits = self.head_logits(task, out, attention_mask, None if u is None else (u, v))
            hidden_states, attentions = out.hidden_states, out.attentions
        if logits.shape[-1] == 1 and spec["kind"] != "classification":
            logits = logits.squeeze(-1)
        loss = task_loss(spec, task, logits, labels) if labels is not None else None
        output = MinBertMultitaskOutput(loss, logits, u, v, hidden_states, attentions)
        return output if return_dict else output.to_tuple()

    def head_logits(self, task, encoder_output, attention_mask=None, pair_embeddings=None):
        """Raw output of a single-sentence or cross-encoder head from the encoder's output (pipelines reuse
        one encoder pass for several heads). `pair_embeddings=(u, v)`: the sentences' mean-pooled
        embeddings, needed by heads with `cosine_feature`."""
        spec = self.config.task_spec(task)
        features = self._head_features(spec, encoder_output, attention_mask)
        cosine = None
        if spec["cosine_feature"]:
            _check(pair_embeddings is not None, task, "a head with cosine_feature needs pair_embeddings=(u, v)")
            cosine = F.cosine_similarity(*pair_embeddings, dim=-1)
        return self.heads[task](features, cosine)

    @staticmethod
    def _head_features(spec, encoder_output, attention_mask):
        pooling = spec["head_pooling"]
        if pooling == "pooler":
            return encoder_output.pooler_output
        if pooling == "cls":
            return encoder_output.last_hidden_state[:, 0]
        return mean_pool(encoder_output.last_hidden_state, attention_mask)

    def _encode_pair_separately(self, side_a, side_b):
        # Both sides go through the encoder as one batch of 2B: one pass over a wider batch is faster than
        # two passes, and pad-to-common-length does not change mean-pooled outputs.
        (ids_a, mask_a, emb_a), (ids_b, mask_b, emb_b) = side_a, side_b
        first = ids_a if ids_a is not None else emb_a
        length = max(first.shape[1], (ids_b if ids_b is not None else emb_b).shape[1])
        mask_a = _ones_mask(first, mask_a)
        mask_b = _ones_mask(ids_b if ids_b is not None else emb_b, mask_b)
        mask = torch.cat([_pad_to(mask_a, length), _pad_to(mask_b, length)])
        if ids_a is not None and ids_b is not None:
            ids = torch.cat([_pad_to(ids_a, length, self.config.pad_token_id), _pad_to(ids_b, length, self.config.pad_token_id)])
            embeddings = self.embed(ids, mask)
        else:
            word = self.get_input_embeddings()
            emb_a = emb_a if emb_a is not None else word(ids_a)
            emb_b = emb_b if emb_b is not None else word(ids_b)
            embeddings = self.embed(None, mask, inputs_embeds=torch.cat([_pad_to(emb_a, length), _pad_to(emb_b, length)]))
        return embeddings.chunk(2)


def _ones_mask(ids_like, mask):
    return mask if mask is not None else torch.ones(ids_like.shape[:2], dtype=torch.long, device=ids_like.device)


def _pad_to(tensor, length, value=0):
    """Right-pad dimension 1 of `tensor` to `length`."""
    missing = length - tensor.shape[1]
    if missing == 0:
        return tensor
    pad = (0, 0, 0, missing) if tensor.dim() == 3 else (0, missing)
    return F.pad(tensor, pad, value=value)


class MinBertForSequenceClassification(MinBertPreTrainedModel):
    """One classification/regression head on the pooled output: the standard transformers shape, for
    `AutoModelForSequenceClassification` users (`config.num_labels`, `config.problem_type`)."""

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = MinBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        # A multitask checkpoint reached through AutoModelForSequenceClassification (as the stock pipeline
        # does) must keep its trained heads: loading it into a fresh single classifier would silently
        # answer with random weights.
        config = kwargs.get("config")
        if not isinstance(config, MinBertConfig):
            config = MinBertConfig.from_pretrained(pretrained_model_name_or_path, **_hub_kwargs(kwargs))
        if cls is MinBertForSequenceClassification and (config.architectures or [None])[0] == "MinBertForMultitask":
            return MinBertForMultitask.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def get_input_embeddings(self):
        return self.bert.get_input_embeddings()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
    ):
        return_dict = self.config.return_dict if return_dict is None else return_dict
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = self._loss(logits, labels) if labels is not None else None
        if not return_dict:
            return tuple(x for x in (loss, logits, out.hidden_states, out.attentions) if x is not None)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)

    def _loss(self, logits, labels):
        # transformers' convention: regression for one label, single-label for integer labels, else multi-label.
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).reshape(-1))
        if self.config.problem_type == "single_label_classification":
            if labels.dim() != 1 or bool(((labels < 0) | (labels >= self.num_labels)).any()):
                raise ValueError(f"labels must be class indices in [0, {self.num_labels}) of shape (batch,)")
            return F.cross_entropy(logits, labels)
        if labels.shape != logits.shape:
            raise ValueError(f"multi-label targets must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def _hub_kwargs(kwargs):
    keys = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "trust_remote_code")
    return {k: kwargs[k] for k in keys if k in kwargs}


# save_pretrained copies this file and configuration_minbert.py next to the weights and writes auto_map, so
# the folder loads with trust_remote_code=True where hf_minbert is not installed.
MinBertConfig.register_for_auto_class()
for _model_class in (MinBertModel, MinBertForMultitask, MinBertForSequenceClassification):
    _model_class.register_for_auto_class("AutoModel")

__all__ = [
    "MinBertPreTrainedModel",
    "MinBertModel",
    "MinBertForMultitask",
    "MinBertForSequenceClassification",
    "MinBertMultitaskOutput",
]
