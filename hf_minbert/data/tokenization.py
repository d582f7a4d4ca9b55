"""Tokenization of task rows into model inputs, dynamic padding, and batching by length.

A task's rows become the columns the model reads (see the shared contract):

    single / cross   input_ids, attention_mask, token_type_ids   ("[CLS] a [SEP]" / "[CLS] a [SEP] b [SEP]")
    bi (or sides)    input_ids_a, attention_mask_a, input_ids_b, attention_mask_b   (each sentence alone)
    labelled rows    labels   (int64 for class labels, float32 for paraphrase and similarity)

Sequences are truncated at `max_length`, and the number of examples that lost tokens is counted and
reported: truncation changes what the model sees, so it must never pass unnoticed.
"""
import hashlib
import logging
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from transformers import PreTrainedTokenizerBase
from transformers.data.data_collator import pad_without_fast_tokenizer_warning
from transformers.trainer_pt_utils import LengthGroupedSampler

from ..configuration_minbert import PAIR_ENCODINGS
from .schema import DataError, check_text, label_numbers, task_schema

logger = logging.getLogger(__name__)

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
SIDE_SUFFIXES = ("_a", "_b")
# The columns a head reads: the joint sequence, and each sentence alone (bi-encoder heads, cosine feature, MNR).
JOINT_COLUMNS = INPUT_KEYS
SIDE_COLUMNS = ("input_ids_a", "attention_mask_a", "input_ids_b", "attention_mask_b")
MODEL_INPUT_COLUMNS = JOINT_COLUMNS + SIDE_COLUMNS
_TRUNCATED = "_truncated"  # temporary per-example flag column, removed before the dataset is returned


@dataclass(frozen=True)
class TruncationReport:
    task: str
    max_length: int
    examples: int
    truncated: int  # examples where any of their encodings lost tokens

    def __str__(self):
        return f"{self.task}: {self.truncated} of {self.examples} examples truncated at max_length={self.max_length}"


def tokenize_task(dataset, tokenizer, task, *, pair_encoding=None, max_length=128, with_sides=False, num_proc=None,
                  head_kind=None):
    """Tokenize a task's rows (schema columns) into model inputs; returns `(Dataset, TruncationReport)`.

    pair_encoding: "single" (one sentence), "cross" (both sentences in one sequence) or "bi" (each
    sentence alone, `_a`/`_b` columns); default "single" for one-sentence tasks, "cross" for pairs.
    with_sides: also add the `_a`/`_b` columns to a cross-encoded pair (for an MNR loss on it).
    head_kind: the kind of head that learns from the rows, which decides what labels beyond the scored ones its
    loss takes (`label_numbers`); None: whatever any head could.
    All original columns are dropped: the rows' ids stay in the untokenized dataset, in the same order.
    """
    schema = task_schema(task)
    pair_encoding = pair_encoding or ("cross" if schema.is_pair else "single")
    _check_pair_encoding(task, schema, pair_encoding, with_sides)
    if max_length < 2:
        raise ValueError(f"max_length must leave room for special tokens, got {max_length}")
    dataset = plain_rows(check_task_rows(task, dataset))
    has_labels = schema.label_column in dataset.column_names
    if has_labels:
        label_numbers(dataset, schema, training=True, head_kind=head_kind)  # the scored labels, and what the loss takes
    missing = [column for column in schema.text_columns if column not in dataset.column_names]
    if missing:
        raise ValueError(f"task {task!r}: the dataset lacks column(s) {missing}; it has {dataset.column_names}")

    def encode(batch, indices):
        texts = [batch[column] for column in schema.text_columns]
        _check_texts(task, schema.text_columns, texts, indices)
        encoded, truncated = {}, [False] * len(texts[0])
        if pair_encoding != "bi":
            joint, joint_truncated = _encode(tokenizer, texts, max_length, with_token_types=True)
            encoded.update(joint)
            truncated = [t or u for t, u in zip(truncated, joint_truncated)]
        if pair_encoding == "bi" or with_sides:
            for suffix, side_texts in zip(SIDE_SUFFIXES, texts):
                side, side_truncated = _encode(tokenizer, [side_texts], max_length, with_token_types=False)
                encoded.update({key + suffix: values for key, values in side.items()})
                truncated = [t or u for t, u in zip(truncated, side_truncated)]
        if has_labels:
            encoded["labels"] = np.asarray(batch[schema.label_column], dtype=np.float64)  # checked: numbers, or their text
        encoded[_TRUNCATED] = truncated
        return encoded

    settings = (task, pair_encoding, max_length, with_sides, has_labels)
    tokenized = dataset.map(
        encode, batched=True, with_indices=True, remove_columns=dataset.column_names, num_proc=num_proc, desc=f"tokenizing {task}",
        new_fingerprint=_fingerprint(dataset, tokenizer, settings),
    )
    if has_labels:
        label_type = "int64" if schema.label_dtype == "int64" else "float32"
        tokenized = tokenized.cast_column("labels", datasets.Value(label_type))
    report = TruncationReport(task, max_length, len(tokenized), sum(tokenized[_TRUNCATED]))
    (logger.warning if report.truncated else logger.info)(str(report))
    return tokenized.remove_columns(_TRUNCATED), report


def save_input_names(tokenizer):
    """Have `tokenizer` write the names of its outputs into the tokenizer_config.json it saves, and return it.
    transformers 5.0-5.2 load the tokenizer of a remote-code model (a model type they do not know) as a generic
    one that returns only the inputs its config names: without them no token_type_ids, and a sentence pair then
    reads as one sentence (wrong answers, or a refusal by a head that reads both orders).

    token_type_ids is among them whatever the tokenizer said: minBERT reads a pair's second sentence as segment B,
    and training, evaluation and the pipelines always ask for it, so `model(**tokenizer(a, b))` must get it too."""
    names = list(tokenizer.model_input_names)
    if "token_type_ids" not in names:
        names.insert(names.index("input_ids") + 1 if "input_ids" in names else 0, "token_type_ids")
    tokenizer.model_input_names = names
    tokenizer.init_kwargs["model_input_names"] = list(names)
    return tokenizer


def check_task_rows(task, rows):
    """`rows` as the loaders give them: a `datasets.Dataset` (sampling and scoring need its length)."""
    if not isinstance(rows, datasets.Dataset):
        hint = " (load it without streaming=True)" if isinstance(rows, datasets.IterableDataset) else ""
        raise TypeError(f"task {task!r}: rows must be a datasets.Dataset{hint}, got {type(rows).__name__}")
    return rows


def is_tokenized(rows):
    """Whether a task's rows already hold model inputs (the joint sequence, or a bi-encoded pair's sides)."""
    return "input_ids" in rows.column_names or "input_ids_a" in rows.column_names


def plain_rows(rows):
    """`rows` read as Python values: under a numpy, torch or pandas format the tokenizer would get arrays."""
    return rows if rows.format["type"] is None else rows.with_format(None)


def _check_texts(task, columns, texts, indices):
    """Each sentence is text with something to read, as the file readers ask (`check_text`)."""
    for column, values in zip(columns, texts):
        for index, value in zip(indices, values):
            problem = check_text(value)
            if problem:
                raise DataError(f"task {task!r}, row {index}, column {column!r}: {problem}")


def check_row_texts(task, rows):
    """The text columns of `task`'s raw rows (those they hold), every sentence checked as tokenizing checks it: a
    `DataError` naming the first bad one's row and column."""
    columns = [column for column in task_schema(task).text_columns if column in rows.column_names]
    values = plain_rows(rows).select_columns(columns)[:]
    _check_texts(task, columns, [values[column] for column in columns], range(len(rows)))


def tokenize_for_sequence_classification(dataset, tokenizer, task, num_labels, max_length=128):
    """A task's rows as a stock `AutoModelForSequenceClassification` with `num_labels` outputs reads them (the
    benchmarks' transformers peer): the text, a pair as one sequence, and `labels`, floats for a regression
    head (num_labels=1) and class indices otherwise (a binary task as two classes). Truncation is neither
    counted nor reported: the peer does what a plain transformers user does."""
    schema = task_schema(task)

    def encode(rows):
        encoded = tokenizer(*[rows[column] for column in schema.text_columns], truncation=True, max_length=max_length)
        labels = rows[schema.label_column]
        encoded["labels"] = [float(y) for y in labels] if num_labels == 1 else [int(y) for y in labels]
        return encoded

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names)


def _fingerprint(dataset, tokenizer, settings):
    """What the tokenized dataset depends on, hashed: datasets would otherwise pickle the whole closure
    (tokenizer included) to fingerprint every map, which costs seconds per call."""
    identity = tokenizer.backend_tokenizer.to_str() if getattr(tokenizer, "is_fast", False) else repr(sorted(tokenizer.get_vocab().items()))
    text = f"{dataset._fingerprint}|{type(tokenizer).__name__}|{identity}|{settings}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _check_pair_encoding(task, schema, pair_encoding, with_sides):
    if pair_encoding not in PAIR_ENCODINGS:
        raise ValueError(f"task {task!r}: pair_encoding must be one of {PAIR_ENCODINGS}, got {pair_encoding!r}")
    if schema.is_pair == (pair_encoding == "single"):
        shape = "sentence pairs" if schema.is_pair else "single sentences"
        raise ValueError(f"task {task!r} has {shape}: pair_encoding {pair_encoding!r} does not fit it")
    if with_sides and pair_encoding != "cross":
        raise ValueError(f"task {task!r}: with_sides adds bi-encoder columns to a cross-encoded pair only")


def _encode(tokenizer, texts, max_length, with_token_types):
    """Tokenize one or two parallel lists of texts with truncation; also flag which examples lost tokens."""
    encoded = tokenizer(
        *texts,
        truncation=True,
        max_length=max_length,
        return_token_type_ids=with_token_types,
        return_attention_mask=True,
    )
    # Only an encoding that exactly fills max_length can have been cut: re-tokenize just those, untruncated.
    at_limit = [i for i, ids in enumerate(encoded["input_ids"]) if len(ids) == max_length]
    truncated = [False] * len(encoded["input_ids"])
    if at_limit:
        full = tokenizer(*[[column[i] for i in at_limit] for column in texts], truncation=False, verbose=False)
        for i, ids in zip(at_limit, full["input_ids"]):
            truncated[i] = len(ids) > max_length
    return {key: encoded[key] for key in INPUT_KEYS if key in encoded}, truncated


@dataclass
class MultitaskDataCollator:
    """Pads each input group of a batch to its own longest sequence: the joint sequence
    (`input_ids`, `attention_mask`, `token_type_ids`) and each bi-encoder side (`*_a`, `*_b`).

    `labels` become a tensor (int64 for class labels, float32 for scores, (B, C) float32 for rows of class
    probabilities); other numeric columns are stacked too, and any other column is passed through as a list.
    """

    tokenizer: PreTrainedTokenizerBase
    pad_to_multiple_of: int = None

    def __call__(self, features):
        batch = {}
        for suffix in ("", *SIDE_SUFFIXES):
            keys = [key for key in INPUT_KEYS if key + suffix in features[0]]
            if not keys:
                continue
            group = [{key: feature[key + suffix] for key in keys} for feature in features]
            padded = pad_without_fast_tokenizer_warning(
                self.tokenizer, group, padding=True, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"
            )
            batch.update({key + suffix: padded[key] for key in keys})
        for key in features[0]:
            if key not in batch:
                batch[key] = _stack([feature[key] for feature in features])
        return batch


def _stack(values):
    if isinstance(values[0], torch.Tensor):
        return torch.stack(values)
    if all(_is_number(value) for value in values):
        return torch.tensor(values, dtype=torch.long if all(isinstance(v, int) for v in values) else torch.float32)
    if all(isinstance(value, list) and len(value) == len(values[0]) and all(map(_is_number, value)) for value in values):
        return torch.tensor(values, dtype=torch.float32)  # rows of numbers, e.g. soft labels (B, C) in distillation
    return values


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def example_lengths(dataset) -> list:
    """Padded-length cost of each tokenized example: its joint sequence's length, or for bi-encoder
    columns the longer side (the model pads both sides to a common length)."""
    columns = [key for key in ("input_ids", "input_ids_a", "input_ids_b") if key in dataset.column_names]
    if not columns:
        raise ValueError(f"no input_ids column to measure; the dataset has {dataset.column_names}")
    per_column = [[len(ids) for ids in dataset[column]] for column in columns]
    return [max(lengths) for lengths in zip(*per_column)]


def length_grouped_sampler(dataset, batch_size: int, generator=None) -> LengthGroupedSampler:
    """transformers' `group_by_length` sampler over a tokenized task: random mega-batches, each sorted
    by length, so that a batch holds examples of similar length and pads little."""
    return LengthGroupedSampler(batch_size, lengths=example_lengths(dataset), generator=generator)


def length_sorted_batches(lengths, batch_size: int) -> list:
    """Indices in batches of similar length, longest first (for inference: least padding, and the
    largest batch runs first so that running out of memory shows at once). Callers restore order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
