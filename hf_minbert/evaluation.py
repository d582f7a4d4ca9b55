"""Prediction and scoring of a multitask model on task datasets: the core of `minbert evaluate`, and of
the trainer's per-task dev metrics.

    predict_task          model + rows -> unrounded predictions (class probabilities, paraphrase
                          probability or similarity score), in the rows' order, with their ids
    predictions_to_labels unrounded predictions -> what a submission file holds (class number or score)
    score_task            predicted labels + gold labels -> the task's metrics
    evaluate_tasks        all of the above over several tasks, each task's predictions and metrics
    evaluate_model        their metrics, plus the two overall scores

Prediction files use the course's submission format, so that they can be compared with (or submitted
like) the ones its scripts wrote: a header line "id \\t Predicted_<name> " and rows "<id> , <value> ".
"""
import contextlib
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from .data.schema import DataError, head_mismatch, label_numbers, task_schema
from .data.tokenization import (
    MultitaskDataCollator,
    TruncationReport,
    example_lengths,
    length_sorted_batches,
    tokenize_task,
)
from .metrics import load_metric, with_overall_scores
from .pipelines import BINARY_THRESHOLD  # the pipelines answer as the scored predictions do


@dataclass
class TaskPredictions:
    task: str
    kind: str  # the head's kind: "classification", "binary" or "regression"
    ids: list  # the rows' `id` column, or their positions ("0", "1", ...) where they have none
    scores: np.ndarray  # float64 (N, C) class probabilities, or (N,) paraphrase probability or similarity
    truncation: TruncationReport


@dataclass
class TaskEvaluation:
    predictions: TaskPredictions
    labels: list  # predicted labels as a submission file holds them
    metrics: dict  # None when the rows have no gold labels


def resolve_max_length(model, tokenizer, max_length=None) -> int:
    """`max_length`, or the longest input both the model and the tokenizer accept; too long is an error."""
    model_limit = model.config.max_position_embeddings
    if max_length is None:
        return min(model_limit, tokenizer.model_max_length)
    if max_length > model_limit:
        raise ValueError(f"max_length={max_length} exceeds the model's max_position_embeddings={model_limit}")
    if max_length < 3:  # [CLS] a [SEP] b [SEP] cannot be cut below three tokens: pairs would pass whole
        raise ValueError(f"max_length={max_length}: give at least 3 tokens (a sentence pair's three special tokens)")
    return max_length


def predict_task(
    model, tokenizer, dataset, task, *, head=None, batch_size=64, max_length=None, bf16=False, progress=True
):
    """Run a head over `dataset` (rows in `task`'s schema); returns `TaskPredictions` in row order.

    head: the model's head to run (default: the head named like the task, e.g. "sts_bi" on sts rows).
    Batches are formed from length-sorted rows so that little padding is computed; the results are put
    back in the rows' order. Runs under `torch.inference_mode` (and bf16 autocast when `bf16`) on the
    model's device, and leaves the model in the train/eval mode it was in.
    """
    head = task if head is None else head
    spec = model.config.task_spec(head)
    max_length = resolve_max_length(model, tokenizer, max_length)
    # A head that also reads each sentence alone (the cosine feature; an ensemble's bi-encoder members) gets
    # them tokenized alone, each cut as the head reads it.
    reads = model.predict_inputs(head) if hasattr(model, "predict_inputs") else (
        ("sides",) if spec.get("cosine_feature") else ())
    with datasets_progress_bars(progress):
        tokenized, truncation = tokenize_task(
            dataset, tokenizer, task, pair_encoding=spec["pair_encoding"], max_length=max_length,
            with_sides=spec["pair_encoding"] == "cross" and "sides" in reads,
        )
    if "labels" in tokenized.column_names:
        tokenized = tokenized.remove_columns("labels")
    collate = MultitaskDataCollator(tokenizer)
    device = next(model.parameters()).device
    scores = [None] * len(tokenized)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _autocast(device, bf16):
            batches = length_sorted_batches(example_lengths(tokenized), batch_size)
            for indices in tqdm(batches, desc=f"predicting {head}", disable=not progress):
                batch = collate(_rows(tokenized, indices))
                logits = model(**{key: value.to(device) for key, value in batch.items()}, task=head).logits
                for index, score in zip(indices, _logits_to_scores(spec["kind"], logits.double())):
                    scores[index] = score
    finally:
        model.train(was_training)
    ids = list(dataset["id"]) if "id" in dataset.column_names else [str(row) for row in range(len(dataset))]
    return TaskPredictions(task, spec["kind"], ids, np.asarray(scores, dtype=np.float64), truncation)


def _rows(dataset, indices):
    columns = dataset[indices]
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


@contextlib.contextmanager
def datasets_progress_bars(enabled):
    """datasets' own bars (tokenizing, casting) shown only where `enabled`; a global opt-out by the user is kept."""
    was_disabled = datasets.are_progress_bars_disabled()
    if not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _autocast(device, bf16):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _logits_to_scores(kind, logits):
    if kind == "classification":
        return torch.softmax(logits, dim=-1).cpu().numpy()
    if kind == "binary":
        return torch.sigmoid(logits).cpu().numpy()
    return logits.cpu().numpy()


def predictions_to_labels(scores, kind: str, label_range=None) -> list:
    """Unrounded predictions -> labels: argmax class, paraphrase (1) when probability > 0.5, or the
    similarity score, clipped to `label_range` where given (the task's: no gold label lies outside it, and the
    pipelines answer so). Python ints / floats, exactly what a prediction file writes."""
    scores = np.asarray(scores, dtype=np.float64)
    if kind == "classification":
        return [int(label) for label in scores.argmax(axis=-1)]
    if kind == "binary":
        return [int(probability > BINARY_THRESHOLD) for probability in scores]
    if kind == "regression":
        return [float(score) for score in (scores if label_range is None else np.clip(scores, *label_range))]
    raise ValueError(f"unknown task kind {kind!r}")


def gold_labels(dataset, task: str) -> list:
    """The gold labels of `task`'s rows as numbers (ints for classes), each checked to be one of the task's
    labels; unlabelled rows cannot be scored."""
    schema = task_schema(task)
    if schema.label_column not in dataset.column_names:
        raise DataError(f"task {task!r}: the rows have no {schema.label_column!r} column, so they cannot be scored"
                         f"{label_column_hint(task, dataset.column_names)}")
    labels = label_numbers(dataset, schema)
    return (labels.astype(np.int64) if schema.label_dtype == "int64" else labels).tolist()


def label_column_hint(task, columns) -> str:
    """A hint for rows that carry their labels under transformers' usual name instead of the task's own."""
    found = [name for name in ("label", "labels") if name in columns]
    column = task_schema(task).label_column
    return f" (rename {found[0]!r} to {column!r}: dataset.rename_column({found[0]!r}, {column!r}))" if found else ""


def unscorable_reason(task: str, dataset):
    """Why `task`'s labelled rows cannot give its metric, or None: a correlation needs two rows whose labels are
    not all equal (else it is undefined). Checked before any prediction, so that a run does not end without
    its score (or train with its best checkpoint chosen on an undefined one). A label that is not one of the
    task's is an error, naming its row."""
    labels = gold_labels(dataset, task)
    if task_schema(task).metric != "correlation":
        return None
    if len(labels) < 2:
        return f"a correlation needs at least 2 scored rows, got {len(labels)}"
    if len(set(labels)) == 1:
        return f"every label is {labels[0]:g}, so the correlation is undefined"
    return None


def score_task(task: str, predictions, labels) -> dict:
    """The task's metrics of predicted labels against gold labels: {"accuracy"} or {"pearson", "spearman"}."""
    schema = task_schema(task)
    if len(predictions) != len(labels):
        raise ValueError(f"task {task!r}: {len(predictions)} predictions for {len(labels)} gold labels")
    if schema.metric == "accuracy":
        predictions = _class_numbers(task, predictions, "predictions")
        labels = _class_numbers(task, labels, "labels")
    return load_metric(schema.metric).compute(predictions=list(predictions), references=list(labels))


def _class_numbers(task, values, what):
    values = np.asarray(values, dtype=np.float64)
    if not np.all(values == np.round(values)):
        raise ValueError(f"task {task!r}: {what} must be class numbers, got non-integer values")
    return values.astype(np.int64).tolist()


def evaluate_task(model, tokenizer, dataset, task, **predict_kwargs) -> TaskEvaluation:
    """Predict `task` on `dataset` and, when the rows carry gold labels, score the predicted labels. A head that
    cannot answer the task's rows (`head=` another kind of head) is refused: its score would mean nothing."""
    head = predict_kwargs.get("head") or task
    mismatch = head_mismatch(task_schema(task), model.config.task_spec(head))
    if mismatch:
        raise ValueError(f"task {task!r} scored by head {head!r}: {mismatch}")
    predictions = predict_task(model, tokenizer, dataset, task, **predict_kwargs)
    labels = predictions_to_labels(predictions.scores, predictions.kind, task_schema(task).label_range)
    labelled = task_schema(task).label_column in dataset.column_names
    metrics = score_task(task, labels, gold_labels(dataset, task)) if labelled else None
    return TaskEvaluation(predictions, labels, metrics)


def evaluate_model(model, tokenizer, datasets_by_task, *, heads=None, **predict_kwargs) -> dict:
    """Metrics of `model` on labelled rows per task, e.g. {"sst": {"accuracy": ...}, ...}, plus
    "overall" (leaderboard) and "mean" when sst, para and sts are all given.

    heads: {task: head name} where a task is scored by a head of another name (default: the task's own).
    """
    results = evaluate_tasks(model, tokenizer, datasets_by_task, heads=heads, **predict_kwargs)
    return with_overall_scores({task: result.metrics for task, result in results.items()})


def evaluate_tasks(model, tokenizer, datasets_by_task, *, heads=None, **predict_kwargs) -> dict:
    """{task: `evaluate_task`'s result} on labelled rows per task; every task's labels are checked before any
    is predicted."""
    predict_kwargs.setdefault("progress", False)
    heads = heads or {}
    for task, dataset in datasets_by_task.items():
        gold_labels(dataset, task)  # unlabelled rows fail here, before any time is spent predicting
    return {task: evaluate_task(model, tokenizer, dataset, task, head=heads.get(task), **predict_kwargs)
            for task, dataset in datasets_by_task.items()}


def write_metrics_json(path, metrics: dict) -> None:
    """metrics.json as {"sst": {"accuracy"}, "para": {...}, "sts": {"pearson", "spearman"}, "overall", "mean"}."""
    write_strict_json(path, metrics)


def write_strict_json(path, data) -> None:
    """`data` as JSON that every reader accepts (`strict_values`)."""
    import json

    Path(path).write_text(json.dumps(strict_values(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def strict_values(data):
    """`data` with every undefined number (the Pearson r of constant predictions is NaN) as None, as metrics.json
    holds it: strict JSON, and a model card's metadata, have no NaN."""
    import math

    if isinstance(data, dict):
        return {key: strict_values(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_values(value) for value in data]
    return None if isinstance(data, float) and math.isnan(data) else data


def write_prediction_file(path, task: str, ids, labels):
    """Write predicted labels in the course's submission format (header, then "id , value" rows)."""
    if len(ids) != len(labels):
        raise ValueError(f"{path}: {len(ids)} ids for {len(labels)} predictions")
    schema = task_schema(task)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"id \t {schema.prediction_header} \n")
        for row_id, label in zip(ids, labels):
            handle.write(f"{row_id} , {_format_label(schema, label)} \n")


def _format_label(schema, label):
    # repr of a float is its shortest exact form: reading the file back gives the very same number.
    if schema.metric == "correlation":
        return repr(float(label))
    if label != int(label):
        raise ValueError(f"task {schema.name!r}: a predicted class must be a whole number, got {label!r}")
    return str(int(label))


def read_prediction_file(path, task: str):
    """Read a submission-format file back: `(ids, labels)`, labels as ints (class tasks) or floats."""
    schema = task_schema(task)
    parse = float if schema.metric == "correlation" else int
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [field.strip() for field in lines[0].split("\t")] if lines else []
    if header != ["id", schema.prediction_header]:
        raise ValueError(f"{path}, line 1: expected header 'id \\t {schema.prediction_header}', got {lines[:1]}")
    ids, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.rsplit(" , ", 1)  # the value holds no " , "; an id may
        try:
            if len(fields) != 2:
                raise ValueError("expected '<id> , <value>'")
            ids.append(fields[0].strip())
            labels.append(parse(fields[1].strip()))
        except ValueError as error:
            raise ValueError(f"{path}, line {number}: {error}: {line!r}") from None
    return ids, labels
