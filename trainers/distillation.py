"""Distillation targets: a teacher's soft predictions over the training inputs, mixed with the gold labels.

    targets = teacher_targets(teacher, teacher_tokenizer, train_rows, student_config, alphas)   # {task: array}
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
import json
from pathlib import Path

import datasets
import numpy as np
from transformers import PretrainedConfig

from hf_minbert.commands.common import has_trained_task_heads
from hf_minbert.configuration_minbert import MinBertConfig, normalize_task_spec
from hf_minbert.data import assign_folds
from hf_minbert.ensemble import dev_score
from hf_minbert.evaluation import gold_labels, predict_task
from hf_minbert.modeling_minbert_ensemble import MinBertEnsembleConfig
from model_cards.run_record import METRICS_FILE, SELECTION_FILE, TRAINING_CONFIG_FILE

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


def fold_teachers(teacher_dirs, max_train_samples):
    """({held-out fold: teacher folder}, num_folds, fold_seed) of out-of-fold teachers, checked: each was trained
    with `--num_folds k --held_out_fold i` (an ensemble: all its members alike), all with the same k, seed and
    --max_train_samples as this run (else their folds would hold other rows), one teacher per fold."""
    records = {folder: teacher_fold_record(folder) for folder in teacher_dirs}
    for folder, record in records.items():
        if record["num_folds"] is None:
            raise ValueError(f"--fold_teachers: {folder} trained on every training row (no --num_folds)")
        if record["max_train_samples"] != max_train_samples:
            raise ValueError(f"--fold_teachers: {folder} trained with --max_train_samples {record['max_train_samples']}, "
                             f"this run has {max_train_samples}: its folds would be of other rows")
    splits = {(r["num_folds"], r["fold_seed"]) for r in records.values()}
    if len(splits) != 1:
        raise ValueError(f"--fold_teachers: the teachers split the rows differently (num_folds, fold_seed): {sorted(splits)}")
    num_folds, seed = splits.pop()
    by_fold = {record["held_out_fold"]: folder for folder, record in records.items()}
    if sorted(r["held_out_fold"] for r in records.values()) != list(range(num_folds)):
        held_out = {folder: record["held_out_fold"] for folder, record in records.items()}
        raise ValueError(f"--fold_teachers: need exactly one teacher per fold 0 .. {num_folds - 1}; held-out folds: {held_out}")
    return by_fold, num_folds, seed


def teacher_fold_record(folder):
    """{num_folds, held_out_fold, fold_seed, max_train_samples} of a trained model folder's run; an ensemble
    folder's members must share theirs."""
    folder = Path(folder)
    if (folder / TRAINING_CONFIG_FILE).is_file():
        data = json.loads((folder / TRAINING_CONFIG_FILE).read_text())["data_arguments"]
        return {key: data.get(key, default) for key, default in
                (("num_folds", None), ("held_out_fold", None), ("fold_seed", 0), ("max_train_samples", None))}
    if (folder / SELECTION_FILE).is_file():
        members = ensemble_members(folder)
        records = [teacher_fold_record(member) for member in members]
        if any(record != records[0] for record in records):
            raise ValueError(f"{folder}: its members were trained on different folds: {dict(zip(members, records))}")
        return records[0]
    raise ValueError(f"{folder}: no {TRAINING_CONFIG_FILE} or {SELECTION_FILE} says which rows it trained on")


def recorded_models(folder):
    """The model folders whose records say what a fold teacher trained on: the folder itself, or an ensemble
    folder's members (as `teacher_fold_record` reads them)."""
    folder = Path(folder)
    if not (folder / TRAINING_CONFIG_FILE).is_file() and (folder / SELECTION_FILE).is_file():
        return [model for member in ensemble_members(folder) for model in recorded_models(member)]
    return [folder]


def ensemble_members(folder):
    """The member folders of a `minbert ensemble` folder, from its selection record: --models as given there,
    relative to the folder the command ran in (`working_dir`, recorded since; else the current one)."""
    record = json.loads((Path(folder) / SELECTION_FILE).read_text())
    base = Path(record.get("working_dir", "."))
    members = [base / member for member in record["members"]]
    for member in members:
        if not member.is_dir():
            raise ValueError(f"{folder}: its member {member} ({SELECTION_FILE}) is not there: its record of the rows "
                             "it trained on is needed")
    return members


def check_fold_teacher_rows(teacher_dirs, training_data):
    """Refuse a fold teacher that trained on folds of other rows than this run reads: per task, the rows its
    files gave (metrics.json's `training_data`: `rows`, and per file `sources`) must be this run's, and where
    both records carry them, so must the files' SHA-256. An ensemble's members are each checked. A teacher whose
    metrics.json does not record its training rows is refused too: its folds cannot be told to be this run's.
    training_data: this run's own record (`training_data_record` of its reads), {task: record}."""
    for folder in teacher_dirs:
        for model in recorded_models(folder):
            where = f"--fold_teachers {folder}" + ("" if Path(model) == Path(folder) else f" (its member {model})")
            metrics = Path(model) / METRICS_FILE
            record = (json.loads(metrics.read_text()) if metrics.is_file() else {}).get("training_data")
            if not record:
                raise ValueError(f"{where}: the rows it trained on are not recorded (no training_data in its "
                                 f"{METRICS_FILE}): cannot tell that its folds are of this run's rows")
            for task, own in training_data.items():
                if task not in record:
                    raise ValueError(f"{where}: the {task} rows it trained on are not recorded (its "
                                     f"{METRICS_FILE} has no training_data for {task})")
                difference = _training_rows_difference(record[task], own)
                if difference:
                    raise ValueError(f"{where}: {task}: {difference}: its folds would be of other rows")


def _training_rows_difference(teacher, own):
    """What differs between a fold teacher's training rows of one task and this run's (None: nothing)."""
    if teacher["rows"] != own["rows"]:
        return f"the teacher trained on folds of {teacher['rows']} rows, this run reads {own['rows']}"
    teacher_files, own_files = teacher.get("sources", {}), own.get("sources", {})
    if list(teacher_files.values()) != list(own_files.values()):
        return f"the teacher's files gave {teacher_files} rows, this run's give {own_files}"
    if "sha256" in teacher and "sha256" in own and list(teacher["sha256"].values()) != list(own["sha256"].values()):
        return (f"the teacher's training files are not this run's ({teacher['rows']} rows each, but SHA-256 "
                f"{teacher['sha256']} against {own['sha256']})")
    return None


def out_of_fold_predictions(teachers, rows_by_task, student_config, num_folds, fold_seed, **predict_kwargs):
    """{task: predictions} in which each training row's comes from the teacher that did not train on it.
    teachers: {held-out fold: (model, tokenizer)}; the rows are split as `minbert train --num_folds` splits them."""
    predictions = {}
    for task, rows in rows_by_task.items():
        folds = assign_folds(len(rows), num_folds, fold_seed)
        indices, scores = [], []
        for fold, (teacher, tokenizer) in teachers.items():
            indices.append(np.flatnonzero(folds == fold))
            scores.append(teacher_predictions(teacher, tokenizer, {task: rows.select(indices[-1])}, student_config,
                                              **predict_kwargs)[task])
        predictions[task] = np.concatenate(scores)[np.argsort(np.concatenate(indices))]  # back to row order
    return predictions


def check_teacher_head(teacher_config, task, student_spec):
    """The teacher's head for `task` must predict what the student's does: same kind, classes and range."""
    if task not in teacher_config.tasks:
        raise ValueError(f"the teacher has no {task!r} head; its tasks: {', '.join(teacher_config.tasks)}")
    teacher_spec = teacher_config.tasks[task]
    for field in ("kind", "labels", "label_range"):
        if teacher_spec[field] != student_spec[field]:
            counts = ""
            if field == "labels" and teacher_spec[field] and student_spec[field]:
                counts = f" ({len(teacher_spec[field])} classes against {len(student_spec[field])})"
            raise ValueError(f"task {task!r}: the teacher's {field} is {teacher_spec[field]!r}, the student's "
                             f"{student_spec[field]!r}{counts}")


def saved_teacher_config(folder):
    """The config a teacher folder's model loads with (`load_multitask_model`), read from its config.json
    without loading any weights: an ensemble folder's own (its tasks derived from its members'), else minBERT's."""
    try:
        config_dict, _ = PretrainedConfig.get_config_dict(str(folder))
    except OSError as error:
        raise ValueError(f"{folder}: cannot read its config: {str(error).splitlines()[0]}") from None
    if not config_dict.get("model_type"):  # read from a folder without config.json: {}
        raise ValueError(f"{folder}: no config.json with a model_type: not a saved model folder")
    trained_heads = config_dict.get("model_type") == MinBertEnsembleConfig.model_type or has_trained_task_heads(config_dict)
    if not trained_heads:  # a plain encoder: its targets would come from freshly drawn heads
        raise ValueError(f"{folder}: a {', '.join(config_dict.get('architectures') or ['model'])} without trained task "
                         "heads: a teacher must be a trained multitask model (minbert train) or an ensemble")
    try:
        if config_dict.get("model_type") == MinBertEnsembleConfig.model_type:
            return MinBertEnsembleConfig.from_dict(config_dict)
        return MinBertConfig.from_dict(config_dict)
    except ValueError as error:
        raise ValueError(f"{folder}: {str(error).splitlines()[0]}") from None


def check_teacher_heads(teacher_dirs, student_specs, flag="--teacher", max_length=None):
    """Before any data is read: every teacher folder's saved config must have, for each of the student's tasks,
    a head that predicts what the student's does (`check_teacher_head`), and positions for `max_length` tokens
    (the teacher reads the rows as the student does). student_specs: {task: head spec}."""
    specs = {task: normalize_task_spec(task, spec) for task, spec in student_specs.items()}
    for folder in teacher_dirs:
        try:
            config = saved_teacher_config(folder)
        except ValueError as error:  # it names the folder
            raise ValueError(f"{flag} {error}") from None
        positions = getattr(config, "max_position_embeddings", None)
        if max_length is not None and positions is not None and max_length > positions:
            raise ValueError(f"{flag} {folder}: --max_seq_length {max_length} exceeds the teacher's "
                             f"max_position_embeddings ({positions})")
        for task, spec in specs.items():
            try:
                check_teacher_head(config, task, spec)
            except ValueError as error:
                raise ValueError(f"{flag} {folder}: {error}") from None


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
    "check_fold_teacher_rows",
    "check_teacher_head",
    "check_teacher_heads",
    "ensemble_members",
    "fold_teachers",
    "mix_targets",
    "out_of_fold_predictions",
    "recorded_models",
    "saved_teacher_config",
    "soft_label_datasets",
    "targets_from_predictions",
    "teacher_fit",
    "teacher_fold_record",
    "teacher_predictions",
    "teacher_targets",
    "with_soft_labels",
]
