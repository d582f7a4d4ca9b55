"""minBERT's task heads and what they compute: per-task heads (single sentence, cross-encoded and bi-encoder
pairs), the masked-LM head, the features a head reads, the one rule that shapes a head's output into the task's
logits, and the task losses. Part of minBERT's remote code (see `modeling_minbert.py`): imports only torch,
transformers and the files beside it.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from .configuration_minbert import num_task_outputs
from .modeling_minbert_layers import mean_pool

# A class label that contributes no loss, as in transformers' BERT heads (cross-entropy's ignore_index).
IGNORE_INDEX = -100


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
        elif spec["kind"] == "regression":
            # A fresh regression head starts mid-range: at 0 it would answer below a range such as [1, 10] (every
            # prediction clipped to 1, its correlation undefined) until training moved its bias that far.
            self.layers[-1].bias_init = sum(spec["label_range"]) / 2

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
        scale — for binary and regression tasks. `forward` with no `task` (the default head, for transformers'
        generic consumers) returns them as (B, num_labels): see `sequence_classification_logits`.
    embeddings_a, embeddings_b: the mean-pooled sentence embeddings of a bi-encoder task.
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    embeddings_a: Optional[torch.FloatTensor] = None
    embeddings_b: Optional[torch.FloatTensor] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class MinBertTaskPrediction(ModelOutput):
    """
    One task's prediction (`MinBertForMultitask.predict`).

    logits: the task's logits, shaped as `forward` returns them (see `task_logits`).
    embeddings: the mean-pooled embeddings of the sentences alone, by the task's encoder, for tasks that read
        them (bi-encoder heads and the cosine feature).
    hidden_states, attentions: of the encoder pass the head read, when asked for (none for a bi-encoder head).
    """

    logits: Optional[torch.FloatTensor] = None
    embeddings: Optional[torch.FloatTensor] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


def sequence_classification_logits(spec, logits):
    """A task's logits in transformers' (batch, num_labels) shape, which `forward` returns when called without a
    task, as transformers' generic consumers call it (the stock text-classification pipeline, a Trainer of an
    AutoModelForSequenceClassification): binary (B,) -> (B, 2) = [0, logit], whose softmax is (1 − p, p) and
    whose cross-entropy is the binary loss; regression (B,) -> (B, 1); classification (B, C) unchanged.
    `config.id2label` names these columns (`sync_labels_with_default_task`)."""
    if spec["kind"] == "binary":
        return torch.stack([torch.zeros_like(logits), logits], dim=-1)
    if spec["kind"] == "regression":
        return logits.unsqueeze(-1)
    return logits


def task_logits(spec, logits):
    """A head's output as the task's logits: (B, C) for classification; (B,) for a single score or logit.

    A head's single output column is squeezed, (B, 1) -> (B,); a cosine head's (B,) stays, also when B = 1.
    Every consumer (forward, the pipelines, an ensemble's members) gets logits through this one rule."""
    if spec["kind"] != "classification" and logits.dim() == 2 and logits.shape[-1] == 1:
        return logits.squeeze(-1)
    return logits


def inputs_read(spec):
    """Which of `MinBertForMultitask.predict`'s inputs a task reads: single sentences ("sentences"),
    cross-encoded pairs ("pairs"), and the rows of each pair's two sentences among the sentences ("sides")."""
    if spec["pair_encoding"] == "single":
        return ("sentences",)
    if spec["pair_encoding"] == "bi":
        return ("sentences", "sides")
    return ("pairs", "sentences", "sides") if spec["cosine_feature"] else ("pairs",)


def pooled_features(spec, encoder_output, attention_mask):
    """What a single-sentence or cross-encoder head reads from an encoder output: the tanh pooler, the raw
    [CLS] vector or the mean of the token vectors (`head_pooling`)."""
    pooling = spec["head_pooling"]
    if pooling == "pooler":
        return encoder_output.pooler_output
    if pooling == "cls":
        return encoder_output.last_hidden_state[:, 0]
    return mean_pool(encoder_output.last_hidden_state, attention_mask)


def task_loss(spec, task, logits, labels, label_smoothing=0.0):
    """The task's loss, after checking that `labels` fit the task (shape and range) with a clear error.

    Classification also accepts soft targets (B, C) that are probability rows, and binary accepts targets
    in [0, 1]: distillation trains on a teacher's probabilities. label_smoothing ε (Trainer's
    `label_smoothing_factor`): classification targets become (1 − ε)·target + ε/C, binary ones the same rule
    for two classes, (1 − ε)·y + ε/2; a regression loss is left as it is.
    """
    kind = spec["kind"]
    logits = logits.float()  # bf16 logits: the loss in fp32, and labels (an STS 3.8, a teacher's 0.73) not rounded
    # One label per row in a column, as BERT's classifier also reads it (a soft-label row has a column per class).
    labels = labels.reshape(-1) if labels.dim() == 2 and labels.shape[-1] == 1 else labels
    if kind == "classification":
        num_classes = logits.shape[-1]
        if labels.dim() == 2 and labels.is_floating_point():
            check_task(labels.shape == logits.shape, task, f"soft labels must have shape {tuple(logits.shape)}")
            check_task(bool((labels >= 0).all()) and torch.allclose(labels.sum(-1), labels.new_ones(())), task,
                        "soft labels must be probability rows (non-negative, summing to 1)")
            return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
        check_task(labels.shape == logits.shape[:1], task, f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
        check_task(not labels.is_floating_point() or bool((labels == labels.round()).all()), task, "class labels must be integers")
        labels = labels.long()
        check_task(bool((((labels >= 0) & (labels < num_classes)) | (labels == IGNORE_INDEX)).all()), task,
                    f"class labels must lie in [0, {num_classes}) (or be {IGNORE_INDEX}: ignored), "
                    f"got values {labels.unique().tolist()}")
        return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing)
    check_task(labels.shape == logits.shape, task, f"labels must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
    labels = labels.float()
    check_task(bool(torch.isfinite(labels).all()), task, "labels contain NaN or Inf")
    if kind == "binary":
        check_task(bool(((labels >= 0) & (labels <= 1)).all()), task, "binary labels must lie in [0, 1]")
        return F.binary_cross_entropy_with_logits(logits, labels * (1 - label_smoothing) + label_smoothing / 2)
    low, high = spec["label_range"]
    check_task(bool(((labels >= low) & (labels <= high)).all()), task, f"regression labels must lie in [{low}, {high}]")
    return F.mse_loss(logits, labels)


def check_task(condition, task, message):
    if not condition:
        raise ValueError(f"task {task!r}: {message}")


def sequence_classification_loss(config, num_labels, logits, labels):
    """`MinBertForSequenceClassification`'s loss, by transformers' convention: regression for one label,
    single-label for integer labels, else multi-label (recorded in `config.problem_type` on first use)."""
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        return F.mse_loss(logits.squeeze(-1).float(), labels.float().reshape(-1))
    if config.problem_type == "single_label_classification":
        if labels.dim() == 2 and labels.shape[1] == 1:  # one label per row in a column, as BERT's classifier reads it
            labels = labels.reshape(-1)
        outside = ((labels < 0) | (labels >= num_labels)) & (labels != IGNORE_INDEX)
        if labels.dim() != 1 or bool(outside.any()):
            raise ValueError(f"labels must be class indices in [0, {num_labels}) (or {IGNORE_INDEX}: ignored) of shape "
                             "(batch,) or (batch, 1)")
        return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX)
    if labels.shape != logits.shape:
        raise ValueError(f"multi-label targets must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class MinBertPredictionHeadTransform(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class MinBertLMPredictionHead(nn.Module):
    """BERT's masked-LM head: dense + activation + LayerNorm, then the decoder onto the vocabulary, whose
    weight is the word-embedding table (tied) and whose bias is `bias` (tied)."""

    def __init__(self, config):
        super().__init__()
        self.transform = MinBertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=True)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def _tie_weights(self):
        # transformers 5 ties the decoder's bias to `bias` by the model's _tied_weights_keys and saves `bias`
        # alone; transformers 4 does not read that mapping, but calls this after loading (as on BERT's own head):
        # without it the decoder kept a bias of zeros there, beside the trained one.
        self.decoder.bias = self.bias

    def forward(self, hidden_states):
        return self.decoder(self.transform(hidden_states))


class MinBertOnlyMLMHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.predictions = MinBertLMPredictionHead(config)

    def forward(self, sequence_output):
        return self.predictions(sequence_output)
