"""Distillation: teacher targets mixed with gold labels, soft labels through the collator and the heads'
losses, and `minbert distill` end to end on tiny models."""
import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from hf_minbert import MinBertEnsembleForMultitask
from hf_minbert.cli import main as minbert
from hf_minbert.commands.train_arguments import DataArguments
from hf_minbert.commands.train_data import load_task_data
from hf_minbert.data import assign_folds, rows_outside_fold
from hf_minbert.evaluation import gold_labels, predict_task
from tests.helpers import tiny_model, tiny_task_rows, write_task_files
from trainers import MultitaskTrainer, MultitaskTrainingArguments
from trainers.distillation import (
    fold_teachers,
    mix_targets,
    out_of_fold_predictions,
    soft_label_datasets,
    teacher_fit,
    teacher_fold_record,
    teacher_targets,
)
from trainers.multitask_data import MultitaskCollator

SST = {"kind": "classification", "labels": ["a", "b", "c"], "label_range": None}
PARA = {"kind": "binary", "labels": ["no", "yes"], "label_range": None}
STS = {"kind": "regression", "labels": None, "label_range": [0.0, 5.0]}
# A few steps of `minbert train` / `minbert distill` on the tiny fixtures.
TINY_RUN = ["--max_steps", "2", "--per_device_train_batch_size", "4", "--eval_strategy", "no", "--save_strategy", "no",
            "--bf16", "false", "--use_cpu", "true", "--disable_tqdm", "true", "--max_seq_length", "32"]


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


# ------------------------------------------------------------------------------------------------------
# Mixing teacher predictions with gold labels
# ------------------------------------------------------------------------------------------------------


def test_class_targets_mix_the_one_hot_gold_label_with_the_teachers_probabilities():
    teacher = [[0.2, 0.5, 0.3], [0.6, 0.2, 0.2]]
    mixed = mix_targets("sst", SST, [2, 0], teacher, alpha=0.25)
    np.testing.assert_allclose(mixed, [[0.15, 0.375, 0.475], [0.7, 0.15, 0.15]], rtol=1e-6)
    assert mixed.dtype == np.float32


def test_binary_targets_mix_the_gold_label_with_the_teachers_probability():
    np.testing.assert_allclose(mix_targets("para", PARA, [1.0, 0.0], [0.8, 0.4], alpha=0.5), [0.9, 0.2], rtol=1e-6)


def test_similarity_targets_mix_gold_with_the_teachers_score_clipped_to_the_label_range():
    np.testing.assert_allclose(mix_targets("sts", STS, [4.0, 1.0], [5.6, 2.0], alpha=0.5), [4.5, 1.5], rtol=1e-6)


def test_alpha_one_is_the_gold_labels_and_alpha_zero_the_teacher():
    teacher = [[0.2, 0.5, 0.3]]
    np.testing.assert_array_equal(mix_targets("sst", SST, [1], teacher, alpha=1.0), [[0.0, 1.0, 0.0]])
    np.testing.assert_allclose(mix_targets("sst", SST, [1], teacher, alpha=0.0), teacher, rtol=1e-6)


def test_alpha_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="alpha must lie in"):
        mix_targets("para", PARA, [1.0], [0.5], alpha=1.5)


def test_teacher_probabilities_of_the_wrong_width_are_refused():
    with pytest.raises(ValueError, match=r"expected \(1, 3\)"):
        mix_targets("sst", SST, [1], [[0.5, 0.5]], alpha=0.5)


# ------------------------------------------------------------------------------------------------------
# Targets from a teacher, through the data path and the trainer
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher():
    return MinBertEnsembleForMultitask.from_members([tiny_model(seed=1), tiny_model(seed=2)],
                                                     {"sst": [1, 1], "para": [1, 1], "sts": [1, 1]}).eval()


@pytest.mark.slow
def test_targets_are_the_teachers_unrounded_predictions_mixed_with_gold(teacher, tokenizer):
    rows = tiny_task_rows(n=6)
    targets = teacher_targets(teacher, tokenizer, rows, tiny_model().config, {"sst": 0.0, "para": 0.5, "sts": 0.0},
                              progress=False)
    sst = predict_task(teacher, tokenizer, rows["sst"], "sst", progress=False).scores
    np.testing.assert_allclose(targets["sst"], sst, rtol=1e-5)
    para = predict_task(teacher, tokenizer, rows["para"], "para", progress=False).scores
    np.testing.assert_allclose(targets["para"], 0.5 * np.array(rows["para"]["is_duplicate"]) + 0.5 * para, rtol=1e-5)
    assert targets["sts"].shape == (6,)


def test_teacher_fit_is_the_teachers_primary_metric_on_the_training_labels():
    rows = tiny_task_rows(n=6)
    gold = {task: np.array(gold_labels(rows[task], task)) for task in rows}
    predictions = {"sst": np.eye(5)[gold["sst"].astype(int)],  # right everywhere
                   "para": 1.0 - gold["para"],  # wrong everywhere
                   "sts": 0.5 * gold["sts"] + 1.0}  # perfectly correlated, off scale
    assert teacher_fit(rows, predictions, tiny_model().config) == pytest.approx({"sst": 1.0, "para": 0.0, "sts": 1.0})


def test_a_teacher_whose_head_predicts_something_else_is_refused(tokenizer):
    tasks = {name: dict(spec) for name, spec in tiny_model().config.tasks.items()}
    tasks["sts"]["label_range"] = [0.0, 1.0]
    with pytest.raises(ValueError, match="task 'sts': the teacher's label_range"):
        teacher_targets(tiny_model(tasks=tasks), tokenizer, {"sts": tiny_task_rows(n=4)["sts"]}, tiny_model().config,
                        {"sts": 0.5}, progress=False)


def test_soft_class_rows_reach_the_model_as_a_float_tensor(tokenizer):
    rows = {"sst": tiny_task_rows(n=4)["sst"]}
    probabilities = np.full((4, 5), 0.2, dtype=np.float32)
    dataset = soft_label_datasets(rows, {"sst": probabilities}, tokenizer, tiny_model().config, max_length=32)["sst"]
    batch = MultitaskCollator(tokenizer)([("sst", dataset[i]) for i in range(4)])["sst"]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (4, 5)
    torch.testing.assert_close(batch["labels"], torch.from_numpy(probabilities))


@pytest.mark.slow
def test_a_student_trains_a_few_steps_on_soft_targets(teacher, tokenizer, tmp_path):
    rows = tiny_task_rows(n=16)
    student = tiny_model(seed=3)
    targets = teacher_targets(teacher, tokenizer, rows, student.config, {t: 0.5 for t in rows}, progress=False)
    train = soft_label_datasets(rows, targets, tokenizer, student.config, max_length=32)
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=3, logging_steps=1,
                                      eval_strategy="no", save_strategy="no", report_to="none", use_cpu=True, bf16=False,
                                      learning_rate=1e-3, disable_tqdm=True, task_sampling="all_tasks", max_seq_length=32)
    trainer = MultitaskTrainer(model=student, args=args, train_dataset=train, processing_class=tokenizer)
    before = {name: p.detach().clone() for name, p in student.named_parameters()}
    trainer.train()
    losses = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(np.isfinite(entry["loss"]) for entry in losses)
    assert {"loss_sst", "loss_para", "loss_sts"} <= set(losses[0])
    assert any(not torch.equal(p, before[name]) for name, p in student.named_parameters())


# ------------------------------------------------------------------------------------------------------
# minbert distill
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tokenizer, teacher):
    teacher_dir, student_dir, data = (tmp_path_factory.mktemp(name) for name in ("teacher", "student", "data"))
    teacher.save_pretrained(teacher_dir)
    tokenizer.save_pretrained(teacher_dir)
    tiny_model(seed=4).save_pretrained(student_dir)
    tokenizer.save_pretrained(student_dir)
    write_task_files(data, tiny_task_rows(n=16, seed=1), split="train")
    write_task_files(data, tiny_task_rows(n=8, seed=2), split="dev")
    return teacher_dir, student_dir, data


@pytest.mark.slow
def test_distill_command_trains_a_single_model_that_evaluate_scores(folders, tmp_path):
    teacher_dir, student_dir, data = folders
    output = tmp_path / "distilled"
    assert minbert(["distill", "--teacher", str(teacher_dir), "--alpha", "sst=0.3,para=0.5,sts=0.5",
                    "--model_name_or_path", str(student_dir), "--data_dir", str(data), "--output_dir", str(output),
                    "--max_steps", "2", "--per_device_train_batch_size", "4", "--eval_strategy", "no",
                    "--save_strategy", "no", "--bf16", "false", "--use_cpu", "true", "--disable_tqdm", "true",
                    "--max_seq_length", "32"]) == 0
    assert json.loads((output / "config.json").read_text())["architectures"] == ["MinBertForMultitask"]
    recorded = json.loads((output / "training_config.json").read_text())["model_arguments"]
    assert recorded["teacher"] == str(teacher_dir) and recorded["alpha"] == {"sst": 0.3, "para": 0.5, "sts": 0.5}
    train_sst = tiny_task_rows(n=16, seed=1)["sst"]
    teacher_labels = predict_task(MinBertEnsembleForMultitask.from_pretrained(teacher_dir), AutoTokenizer.from_pretrained(teacher_dir),
                                  train_sst, "sst", progress=False).scores.argmax(axis=1)
    assert set(recorded["teacher_train_scores"]) == {"sst", "para", "sts"}
    assert recorded["teacher_train_scores"]["sst"] == pytest.approx(np.mean(teacher_labels == np.array(train_sst["sentiment"])))
    assert minbert(["evaluate", "--model", str(output), "--data_dir", str(data), "--output_dir", str(tmp_path / "eval"),
                    "--no_progress"]) == 0
    trained = json.loads((output / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["sst"] == pytest.approx(trained["sst"]) and evaluated["para"] == pytest.approx(trained["para"])


# ------------------------------------------------------------------------------------------------------
# Out-of-fold teachers
# ------------------------------------------------------------------------------------------------------


def test_training_with_a_held_out_fold_reads_only_the_other_folds_rows(tmp_path):
    write_task_files(tmp_path, tiny_task_rows(n=10, seed=1), split="train")
    write_task_files(tmp_path, tiny_task_rows(n=4, seed=2), split="dev")
    whole, _, _ = load_task_data(DataArguments(data_dir=str(tmp_path)), ["sst"])
    fold_1_out, _, _ = load_task_data(DataArguments(data_dir=str(tmp_path), num_folds=2, held_out_fold=1, fold_seed=3), ["sst"])
    kept = rows_outside_fold(10, 2, held_out_fold=1, seed=3)
    assert fold_1_out["sst"]["id"] == [whole["sst"]["id"][i] for i in kept] and len(kept) == 5


def test_num_folds_without_a_held_out_fold_is_refused():
    with pytest.raises(ValueError, match="--num_folds and --held_out_fold go together"):
        DataArguments(num_folds=2)
    with pytest.raises(ValueError, match=r"--held_out_fold must lie in 0 .. 2, got 3"):
        DataArguments(num_folds=3, held_out_fold=3)


@pytest.mark.slow
def test_each_row_gets_the_prediction_of_the_teacher_that_left_its_fold_out(tokenizer):
    rows = tiny_task_rows(n=9)
    teachers = {0: (tiny_model(seed=1).eval(), tokenizer), 1: (tiny_model(seed=2).eval(), tokenizer)}
    predictions = out_of_fold_predictions(teachers, rows, tiny_model().config, num_folds=2, fold_seed=7, progress=False)
    folds = assign_folds(9, 2, seed=7)
    for task in rows:
        every_row = {fold: predict_task(model, tokenizer, rows[task], task, progress=False).scores
                     for fold, (model, _) in teachers.items()}
        expected = np.stack([every_row[folds[row]][row] for row in range(9)])
        np.testing.assert_allclose(predictions[task], expected, rtol=1e-4, atol=1e-5)


def _fold_teacher(folder, held_out_fold, num_folds=2, fold_seed=0, max_train_samples=None):
    folder.mkdir()
    data = {"num_folds": num_folds, "held_out_fold": held_out_fold, "fold_seed": fold_seed,
            "max_train_samples": max_train_samples}
    (folder / "training_config.json").write_text(json.dumps({"data_arguments": data}))
    return str(folder)


def test_fold_teachers_are_matched_to_the_fold_each_left_out(tmp_path):
    second, first = _fold_teacher(tmp_path / "b", 1), _fold_teacher(tmp_path / "a", 0)
    assert fold_teachers([second, first], max_train_samples=None) == ({1: second, 0: first}, 2, 0)


def test_an_ensemble_of_models_trained_without_the_same_fold_is_that_folds_teacher(tmp_path):
    members = [_fold_teacher(tmp_path / name, 0) for name in ("m1", "m2")]
    (tmp_path / "ens").mkdir()
    (tmp_path / "ens" / "ensemble_selection.json").write_text(json.dumps({"members": members}))
    assert teacher_fold_record(tmp_path / "ens")["held_out_fold"] == 0
    other = _fold_teacher(tmp_path / "m3", 1)
    (tmp_path / "ens" / "ensemble_selection.json").write_text(json.dumps({"members": [*members, other]}))
    with pytest.raises(ValueError, match="its members were trained on different folds"):
        teacher_fold_record(tmp_path / "ens")


@pytest.mark.parametrize("teachers, message", [
    ([("a", 0), ("b", 0)], r"one teacher per fold 0 .. 1"),
    ([("a", 0), ("b", 1, 2, 5)], r"split the rows differently"),
    ([("a", 0), ("b", 1, 2, 0, 100)], r"b trained with --max_train_samples 100, this run has None"),
])
def test_fold_teachers_that_do_not_cover_the_same_rows_once_are_refused(tmp_path, teachers, message):
    folders = [_fold_teacher(tmp_path / name, *spec) for name, *spec in teachers]
    with pytest.raises(ValueError, match=message):
        fold_teachers(folders, max_train_samples=None)


@pytest.mark.slow
def test_a_teacher_trained_on_every_row_is_not_a_fold_teacher(tmp_path, folders):
    teacher_dir, student_dir, data = folders
    trained = tmp_path / "whole"
    assert minbert(["train", "--model_name_or_path", str(student_dir), "--data_dir", str(data), "--output_dir",
                    str(trained), *TINY_RUN]) == 0
    with pytest.raises(ValueError, match="trained on every training row"):
        fold_teachers([str(trained), _fold_teacher(tmp_path / "f1", 1)], max_train_samples=None)
    with pytest.raises(ValueError, match=r"no training_config.json or ensemble_selection.json"):
        fold_teachers([str(teacher_dir)], max_train_samples=None)


@pytest.mark.slow
def test_distill_command_with_fold_teachers_records_their_out_of_fold_scores(folders, tmp_path):
    _, student_dir, data = folders
    teachers = []
    for fold in (1, 0):
        teachers.append(str(tmp_path / f"fold{fold}"))
        assert minbert(["train", "--model_name_or_path", str(student_dir), "--data_dir", str(data), "--output_dir",
                        teachers[-1], "--num_folds", "2", "--held_out_fold", str(fold), *TINY_RUN]) == 0
    output = tmp_path / "distilled"
    assert minbert(["distill", "--fold_teachers", *teachers, "--model_name_or_path", str(student_dir),
                    "--data_dir", str(data), "--output_dir", str(output), *TINY_RUN]) == 0
    recorded = json.loads((output / "training_config.json").read_text())["model_arguments"]
    assert recorded["fold_teachers"] == teachers and set(recorded["teacher_train_scores"]) == {"sst", "para", "sts"}


def test_distill_needs_exactly_one_of_teacher_and_fold_teachers(folders, tmp_path, capsys):
    teacher_dir, student_dir, data = folders
    assert minbert(["distill", "--model_name_or_path", str(student_dir), "--data_dir", str(data),
                    "--output_dir", str(tmp_path / "out"), *TINY_RUN]) == 2
    assert "minbert distill: give --teacher DIR or --fold_teachers" in capsys.readouterr().err
