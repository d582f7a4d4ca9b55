"""Task datasets concatenated for one DataLoader, and the collator that turns a sampled batch into
`{task: model inputs}`.

A batch from `MultitaskBatchSampler` is one task's examples, or (all_tasks) one batch of every task; the
collator groups rows by task so both arrive in the same shape and `compute_loss` just loops over tasks.
The task therefore travels at batch level and never has to survive as a dataset column.
"""
import bisect
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from datasets import concatenate_datasets
from torch.utils.data import DataLoader, Dataset

from hf_minbert.data.schema import IGNORE_LABEL, DataError, task_schema
from hf_minbert.data.tokenization import MODEL_INPUT_COLUMNS, MultitaskDataCollator, is_tokenized, tokenize_task
from hf_minbert.evaluation import label_column_hint

TRAINING_COLUMNS = MODEL_INPUT_COLUMNS + ("labels",)


def tokenize_for_training(datasets_by_task, tokenizer, model_config, max_length, sides_for=(), keep_columns=False):
    """Tokenize raw task rows for the model's heads (pair encoding from the config); tasks in `sides_for`
    also get the separate `_a`/`_b` sentences (the MNR loss embeds them). Already tokenized datasets pass
    through. Truncation counts are logged per task. keep_columns (TrainingArguments' remove_unused_columns=False):
    the rows' other columns stay beside the model inputs, for a collator of one's own to read."""
    tokenized = {}
    for task, dataset in datasets_by_task.items():
        spec = model_config.task_spec(task)
        if is_tokenized(dataset):
            check_tokenized_inputs(task, dataset, spec)
            check_tokenized_labels(task, dataset, spec)
            tokenized[task] = dataset
            continue
        if task_schema(task).label_column not in dataset.column_names:
            raise ValueError(f"train_dataset: task {task!r} reads its labels from column "
                             f"{task_schema(task).label_column!r}, which its rows lack (they have "
                             f"{dataset.column_names}){label_column_hint(task, dataset.column_names)}")
        with_sides = spec["pair_encoding"] == "cross" and (task in sides_for or spec["cosine_feature"])
        try:
            tokenized[task], _ = tokenize_task(  # which logs its truncation report
                dataset, tokenizer, task, pair_encoding=spec["pair_encoding"], max_length=max_length, with_sides=with_sides,
                head_kind=spec["kind"],
            )
        except DataError as error:  # a row's text or label, named by task, row and column
            raise DataError(f"train_dataset: {error}") from None
        if keep_columns:
            raw = dataset.select_columns([c for c in dataset.column_names if c not in tokenized[task].column_names])
            tokenized[task] = concatenate_datasets([tokenized[task], raw], axis=1)
    return {task: _model_columns(task, ds, keep_columns) for task, ds in tokenized.items()}


def check_tokenized_inputs(task, rows, spec):
    """Already tokenized training rows hold the input ids the task's head reads: the joint sequence, each sentence
    alone (a bi-encoder; a cross-encoder reading the cosine), or both."""
    needed = [] if spec["pair_encoding"] == "bi" else ["input_ids"]
    if spec["pair_encoding"] == "bi" or spec.get("cosine_feature"):
        needed += ["input_ids_a", "input_ids_b"]
    missing = [column for column in needed if column not in rows.column_names]
    if missing:
        raise ValueError(f"train_dataset: task {task!r}: its tokenized rows lack {', '.join(missing)}, which its head "
                         f"reads ({spec['pair_encoding']}-encoded); they have {rows.column_names}")


def check_tokenized_labels(task, rows, spec):
    """The `labels` of already tokenized training rows, checked before any work as raw rows' are: what the task's
    head's loss takes (a class 0..C-1 or the ignore index -100; 0..1 for a binary head; a finite score for a
    regression head, whose soft targets may leave its range). The first that is not is a `DataError` naming its
    row; soft class targets (a list per row, as distillation gives them) are the heads' to check."""
    if "labels" not in rows.column_names:
        return  # _model_columns names what is missing
    column = rows.with_format("arrow")["labels"]
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)):
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            return
        raise DataError(f"train_dataset: task {task!r}, column 'labels': labels must be numbers, got {column.type}")
    labels = column.to_numpy(zero_copy_only=False).astype(np.float64)
    if spec["kind"] == "classification":
        allowed = np.isin(labels, np.arange(len(spec["labels"]))) | (labels == IGNORE_LABEL)
        expected = f"a class 0..{len(spec['labels']) - 1} (or {IGNORE_LABEL}, ignored)"
    elif spec["kind"] == "binary":
        allowed, expected = (labels >= 0) & (labels <= 1), "a number from 0 to 1"
    else:
        allowed, expected = np.isfinite(labels), "a finite score"
    if not allowed.all():
        row = int(np.flatnonzero(~allowed)[0])
        raise DataError(f"train_dataset: task {task!r}, row {row}, column 'labels': {column[row].as_py()!r} is not a "
                        f"label its {spec['kind']} head learns from ({expected})")


def _model_columns(task, dataset, keep_columns=False):
    if "labels" not in dataset.column_names:
        raise ValueError(f"train dataset of task {task!r} has no labels; it has columns {dataset.column_names}")
    extra = [] if keep_columns else [c for c in dataset.column_names if c not in TRAINING_COLUMNS]
    return dataset.remove_columns(extra).with_format(None)


class MultitaskDataset(Dataset):
    """The task datasets end to end, in `datasets_by_task` order: global index = task offset + local index
    (the layout `MultitaskBatchSampler` indexes). Items are `(task, row)`."""

    def __init__(self, datasets_by_task):
        self.datasets = dict(datasets_by_task)
        self.tasks = list(self.datasets)
        self.sizes = {task: len(ds) for task, ds in self.datasets.items()}
        self.offsets = []
        total = 0
        for task in self.tasks:
            self.offsets.append(total)
            total += self.sizes[task]
        self.total = total

    def __len__(self):
        return self.total

    def locate(self, index):
        if not 0 <= index < self.total:
            raise IndexError(f"index {index} outside the {self.total} examples of tasks {self.tasks}")
        position = bisect.bisect_right(self.offsets, index) - 1
        return self.tasks[position], index - self.offsets[position]

    def __getitem__(self, index):
        task, local = self.locate(index)
        return task, self.datasets[task][local]

    def __getitems__(self, indices):
        # One columnar read per task instead of one row read per example: much faster on Arrow data.
        by_task = {}
        for position, index in enumerate(indices):
            task, local = self.locate(int(index))
            by_task.setdefault(task, []).append((position, local))
        items = [None] * len(indices)
        for task, entries in by_task.items():
            columns = self.datasets[task][[local for _, local in entries]]
            rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
            for (position, _), row in zip(entries, rows):
                items[position] = (task, row)
        return items


@dataclass
class MultitaskCollator:
    """`[(task, row), ...]` -> `{task: padded inputs with labels}`, tasks in order of first appearance."""

    tokenizer: object
    pad_to_multiple_of: int = None

    def __post_init__(self):
        self.pad = MultitaskDataCollator(self.tokenizer, pad_to_multiple_of=self.pad_to_multiple_of)

    def __call__(self, items):
        grouped = {}
        for task, row in items:
            grouped.setdefault(task, []).append(row)
        return {task: self.pad(rows) for task, rows in grouped.items()}


class MultitaskDataLoader(DataLoader):
    """A DataLoader whose `set_epoch` reaches the batch sampler (Trainer calls it every epoch), so each
    epoch draws a new, reproducible task schedule."""

    def set_epoch(self, epoch):
        self.batch_sampler.set_epoch(epoch)
