"""Distillation: teacher targets mixed with gold labels, soft labels through the collator and the heads'
losses, and `minbert distill` end to end on tiny models."""
import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from hf_minbert import MinBertEnsembleForMultitask
from hf_minbert.cli import main as minbert
from hf_minbert.evaluation import gold_labels, predict_task
from tests.helpers import tiny_model, tiny_task_rows, write_task_files
from trainers import MultitaskTrainer, MultitaskTrainingArguments
from trainers.distillation import mix_targets, soft_label_datasets, teacher_fit, teacher_targets
from trainers.multitask_data import MultitaskCollator

SST = {"kind": "classification", "labels": ["a", "b", "c"], "label_range": None}
PARA = {"kind": "binary", "labels": ["no", "yes"], "label_range": None}
STS = {"kind": "regression", "labels": None, "label_range": [0.0, 5.0]}


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


def test_a_student_trains_a_few_steps_on_soft_targets(teacher, tokenizer, tmp_path):
    rows = tiny_task_rows(n=16)
    student = tiny_model(seed=3)
    targets = teacher_targets(teacher, tokenizer, rows, student.config, {t: 0.5 for t in rows}, progress=False)
    train = soft_label_datasets(rows, targets, tokenizer, student.config, max_length=32)
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=3, logging_steps=1,
                                      eval_strategy="no", save_strategy="no", report_to="none", use_cpu=True, bf16=False,
                                      learning_rate=1e-3, disable_tqdm=True, task_sampling="all_tasks")
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
