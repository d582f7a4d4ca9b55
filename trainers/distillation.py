"""Distillation targets: a teacher's soft predictions over the training inputs, mixed with the gold labels.

    targets = teacher_targets(teacher, teacher_tokenizer, train_rows, alphas)   # {task: array}
    train = soft_label_datasets(train_rows, targets, student_tokenizer, student_config, max_length)

and MultitaskTrainer trains the student on `train` as usual: the heads' losses accept soft targets
(cross-entropy against probability rows, BCE against probabilities, MSE against scores).

Per example, with α the weight of the gold label (α = 1: plain training; α = 0: the teacher alone):

    classification   α · onehot(gold) + (1 − α) · teacher's class probabilities
    binary           α · gold + (1 − α) · teacher's probability
    regression       α · gold + (1 − α) · teacher's score, clipped to the label range

The teacher is any saved multitask model, typically a `MinBertEnsembleForMultitask` (`minbert ensemble`):
the point is one small model that keeps most of an ensemble's gain.
"""
import datasets
import numpy as np

from hf_minbert.ensemble import dev_score
from hf_minbert.evaluation import gold_labels, predict_task

from .multitask_data import tokenize_for_training


def mix_targets(task, spec, gold, teacher_scores, alpha):
    """Soft targets for one task (float32): (N, C) probability rows, or (N,) probabilities or scores."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"task {task!r}: alpha must lie in [0, 1], got {alpha}")
    gold = np.asarray(gold, dtype=np.float64)
    teacher = np.asarray(teacher_scores, dtype=np.float64)
    kind = spec["kind"]
    if kind == "classification":
        num_classes = len(spec["labels"])
        if teacher.shape != (len(gold), num_classes):
            raise ValueError(f"task {task!r}: teacher probabilities have shape {teacher.shape}; expected {(len(gold), num_classes)}")
        onehot = np.eye(num_classes)[gold.astype(np.int64)]
        mixed = alpha * onehot + (1.0 - alpha) * teacher
        mixed /= mixed.sum(axis=1, keepdims=True)  # rows sum to 1 up to float rounding; make it exact
    else:
        if teacher.shape != gold.shape:
            raise ValueError(f"task {task!r}: {teacher.shape[0] if teacher.ndim else 0} teacher predictions for {len(gold)} rows")
        if kind == "regression":
            teacher = np.clip(teacher, *spec["label_range"])
        mixed = alpha * gold + (1.0 - alpha) * teacher
    return mixed.astype(np.float32)


def teacher_predictions(teacher, tokenizer, rows_by_task, student_config, **predict_kwargs):
    """{task: the teacher's unrounded predictions} for each task's labelled training rows, in row order.
    `predict_kwargs` go to `predict_task` (batch_size, max_length, bf16, progress)."""
    predictions = {}
    for task, rows in rows_by_task.items():
        check_teacher_head(teacher.config, task, student_config.task_spec(task))
        predictions[task] = predict_task(teacher, tokenizer, rows, task, **predict_kwargs).scores
    return predictions


def targets_from_predictions(rows_by_task, predictions, student_config, alphas):
    """{task: soft targets}: each task's teacher predictions mixed with its gold labels (`mix_targets`)."""
    return {task: mix_targets(task, student_config.task_spec(task), gold_labels(rows, task), predictions[task], alphas[task])
            for task, rows in rows_by_task.items()}


def teacher_targets(teacher, tokenizer, rows_by_task, student_config, alphas, **predict_kwargs):
    """{task: soft targets} for each task's labelled training rows, in row order. `alphas`: {task: α}."""
    predictions = teacher_predictions(teacher, tokenizer, rows_by_task, student_config, **predict_kwargs)
    return targets_from_predictions(rows_by_task, predictions, student_config, alphas)


def teacher_fit(rows_by_task, predictions, student_config):
    """{task: the teacher's primary metric on the training rows} (accuracy, or Pearson's r). A teacher whose
    members trained on these rows fits them far better than dev: its soft targets then sit close to the gold
    labels, and the student learns little from it that the labels alone would not teach."""
    return {task: dev_score(task, student_config.task_spec(task)["kind"], predictions[task], gold_labels(rows, task))
            for task, rows in rows_by_task.items()}


def check_teacher_head(teacher_config, task, student_spec):
    """The teacher's head for `task` must predict what the student's does: same kind, classes and range."""
    if task not in teacher_config.tasks:
        raise ValueError(f"the teacher has no {task!r} head; its tasks: {', '.join(teacher_config.tasks)}")
    teacher_spec = teacher_config.tasks[task]
    for field in ("kind", "labels", "label_range"):
        if teacher_spec[field] != student_spec[field]:
            raise ValueError(f"task {task!r}: the teacher's {field} is {teacher_spec[field]!r}, the student's {student_spec[field]!r}")


def soft_label_datasets(rows_by_task, targets, tokenizer, student_config, max_length, sides_for=()):
    """The student's tokenized training sets with `labels` replaced by the soft targets (rows in order)."""
    tokenized = tokenize_for_training(rows_by_task, tokenizer, student_config, max_length, sides_for=sides_for)
    return {task: with_soft_labels(task, dataset, targets[task]) for task, dataset in tokenized.items()}


def with_soft_labels(task, dataset, targets):
    if len(targets) != len(dataset):
        raise ValueError(f"task {task!r}: {len(targets)} soft targets for {len(dataset)} training rows")
    feature = datasets.List(datasets.Value("float32")) if targets.ndim == 2 else datasets.Value("float32")
    return dataset.remove_columns("labels").add_column("labels", targets.tolist(), feature=feature)


__all__ = [
    "check_teacher_head",
    "mix_targets",
    "soft_label_datasets",
    "targets_from_predictions",
    "teacher_fit",
    "teacher_predictions",
    "teacher_targets",
    "with_soft_labels",
]
