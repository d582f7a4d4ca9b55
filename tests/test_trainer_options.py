"""MultitaskTrainer under the options a transformers.Trainer user passes: each is honoured as Trainer honours it,
or refused by name with what to use instead — never silently ignored."""
import copy
import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap

import datasets
import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, DataCollatorWithPadding, TrainerCallback
from transformers.trainer_utils import IntervalStrategy

from tests.helpers import REPO_ROOT, scoring_tiny_model, tiny_model, tiny_task_rows
from tests.test_trainer import _args, _train_logs, _trainer, tokenizer  # noqa: F401  (module fixture)
from trainers import MultitaskTrainer, MultitaskTrainingArguments


def _plain_trainer(tmp_path, tokenizer, rows=None, **options):  # noqa: F811
    """A trainer built with Trainer's own keyword arguments (`options`) beside the model and the data."""
    rows = rows or tiny_task_rows()
    return MultitaskTrainer(model=options.pop("model", tiny_model()), args=_args(tmp_path, **options.pop("args", {})),
                            train_dataset=rows, eval_dataset=rows, processing_class=tokenizer, **options)


# --- load_best_model_at_end's default -----------------------------------------------------------------


def test_the_best_model_is_not_restored_by_default_where_saves_fall_between_evaluations(tmp_path):
    args = _args(tmp_path, eval_strategy="steps", save_strategy="steps", eval_steps=3, save_steps=5)
    assert args.load_best_model_at_end is False


def test_the_best_model_is_restored_by_default_where_every_evaluation_saves_a_checkpoint(tmp_path):
    args = _args(tmp_path, eval_strategy="steps", save_strategy="steps", eval_steps=3, save_steps=3)
    assert args.load_best_model_at_end is True


def test_the_best_model_is_not_restored_by_default_where_saves_skip_evaluations(tmp_path):
    # Trainer would keep the best of the evaluations it saved, not the best evaluation
    args = _args(tmp_path, eval_strategy="steps", save_strategy="steps", eval_steps=3, save_steps=6)
    assert args.load_best_model_at_end is False


def test_the_best_model_is_not_restored_by_default_where_ratios_round_to_steps_that_miss_each_other(tmp_path):
    # Of 14 steps, Trainer evaluates every ceil(0.25 × 14) = 4 and saves every ceil(0.5 × 14) = 7.
    args = _args(tmp_path, eval_strategy="steps", save_strategy="steps", eval_steps=0.25, save_steps=0.5)
    assert args.load_best_model_at_end is False


def test_the_best_model_is_restored_by_default_where_one_ratio_schedules_both(tmp_path):
    args = _args(tmp_path, eval_strategy="steps", save_strategy="steps", eval_steps=0.25, save_steps=0.25)
    assert args.load_best_model_at_end is True


def test_a_copy_given_no_load_best_model_at_end_decides_again_for_its_schedule(tmp_path):
    args = dataclasses.replace(_args(tmp_path, eval_strategy="epoch", save_strategy="epoch"), eval_strategy="no",
                               load_best_model_at_end=None)
    assert args.load_best_model_at_end is False


def test_a_strategy_given_as_an_enum_restores_the_best_model_as_its_string_does(tmp_path):
    args = _args(tmp_path, eval_strategy=IntervalStrategy.EPOCH, save_strategy="epoch")
    assert args.load_best_model_at_end is True


def _scheduler(trainer):
    trainer.create_optimizer()
    return trainer.create_scheduler(num_training_steps=10)


def test_reduce_lr_on_plateau_waits_for_the_best_model_metric_to_stop_rising(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"lr_scheduler_type": "reduce_lr_on_plateau",
                                                        "eval_strategy": "epoch", "save_strategy": "epoch"})
    assert trainer.args.metric_for_best_model == "overall" and _scheduler(trainer).mode == "max"


def test_reduce_lr_on_plateau_set_after_the_arguments_were_built_watches_the_metric_rise(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"eval_strategy": "epoch", "save_strategy": "epoch"})
    trainer.args.set_lr_scheduler(name="reduce_lr_on_plateau")
    assert _scheduler(trainer).mode == "max"


def test_the_greedy_schedule_also_watches_the_metric_rise(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"lr_scheduler_type": "greedy", "eval_strategy": "epoch",
                                                        "save_strategy": "epoch"})
    assert _scheduler(trainer).mode == "max"


def test_a_copy_of_plateau_arguments_with_another_schedule_gets_no_plateau_options(tmp_path, tokenizer):  # noqa: F811
    plateau = _args(tmp_path, lr_scheduler_type="reduce_lr_on_plateau", eval_strategy="epoch", save_strategy="epoch")
    args = dataclasses.replace(plateau, lr_scheduler_type="linear")
    rows = tiny_task_rows()
    trainer = MultitaskTrainer(model=tiny_model(), args=args, train_dataset=rows, eval_dataset=rows, processing_class=tokenizer)
    assert args.lr_scheduler_kwargs is None and isinstance(_scheduler(trainer), torch.optim.lr_scheduler.LambdaLR)


def test_a_best_model_metric_named_like_a_loss_is_best_when_smallest_as_transformers_infers(tmp_path):
    assert _args(tmp_path, metric_for_best_model="sts_mse_loss").greater_is_better is False
    assert _args(tmp_path).greater_is_better is True


def test_an_optimizer_chosen_after_the_arguments_were_built_is_refused_before_training(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer)
    trainer.args.set_optimizer(name="sgd")
    with pytest.raises(ValueError, match="--optim sgd: MultitaskTrainer always trains with AdamW"):
        trainer.train()


def test_a_learning_rate_set_with_set_optimizer_trains_with_adamw(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"max_steps": 1})
    trainer.args.set_optimizer(learning_rate=1e-4)  # names optim="adamw_torch": AdamW, as trains
    trainer.train()
    assert trainer.optimizer.param_groups[0]["lr"] <= 1e-4


def test_reentrant_checkpointing_set_after_the_arguments_were_built_is_refused_before_training(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"smart_weight": "sst=1"})
    trainer.args.activation_checkpointing = True  # transformers 5's names; gradient_checkpointing is their alias
    trainer.args.activation_checkpointing_kwargs = {"use_reentrant": True}
    with pytest.raises(ValueError, match="use_reentrant=True cannot run --smart_weight"):
        trainer.train()


@pytest.mark.parametrize("technique, refused", [({"pcgrad": True, "task_sampling": "all_tasks"}, "--pcgrad"),
                                                ({"smart_weight": "sst=1"}, "--smart_weight"),
                                                ({"smart_weight": "sst=1", "smart_variant": "gaussian"}, None)])
def test_reentrant_checkpointing_is_refused_with_what_takes_autograd_grad(tmp_path, tokenizer, technique, refused):  # noqa: F811
    options = {"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": True}, **technique}
    if refused is None:
        _plain_trainer(tmp_path, tokenizer, args=options)
        return
    with pytest.raises(ValueError, match=f"use_reentrant=True cannot run {refused}, which take torch.autograd.grad"):
        _plain_trainer(tmp_path, tokenizer, args=options)


# --- compute_metrics ----------------------------------------------------------------------------------


def _mean_score(prediction):
    return {"mean_score": float(prediction.predictions.mean()), "rows": len(prediction.label_ids)}


def test_compute_metrics_adds_each_tasks_own_metrics_to_evaluate(tmp_path, tokenizer):  # noqa: F811
    metrics = _plain_trainer(tmp_path, tokenizer, compute_metrics=_mean_score).evaluate()
    assert metrics["eval_sst_rows"] == metrics["eval_para_rows"] == 24
    assert "eval_sts_mean_score" in metrics and "eval_overall" in metrics


def test_compute_metrics_scores_predict_too(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, compute_metrics=_mean_score)
    output = trainer.predict({"sts": tiny_task_rows()["sts"]})["sts"]
    assert output.metrics["test_sts_mean_score"] == pytest.approx(float(output.predictions.mean()))


class _RunningMean:
    """A metric written for batch_eval_metrics: it gathers every call's scores and answers at compute_result."""

    def __init__(self):
        self.scores = []

    def __call__(self, prediction, compute_result):
        self.scores.extend(np.ravel(prediction.predictions).tolist())
        if not compute_result:
            return {}
        mean, self.scores = float(np.mean(self.scores)), []
        return {"running_mean": mean}


def test_a_batch_eval_metric_answers_for_each_task(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, compute_metrics=_RunningMean(), args={"batch_eval_metrics": True})
    metrics = trainer.evaluate()
    sts = trainer.predict({"sts": tiny_task_rows()["sts"]})["sts"]
    assert metrics["eval_sts_running_mean"] == pytest.approx(float(sts.predictions.mean()))


def test_compute_metrics_may_not_replace_a_metric_the_trainer_reports(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, compute_metrics=lambda prediction: {"accuracy": 1.0})
    with pytest.raises(ValueError, match="compute_metrics returned eval_sst_accuracy, which MultitaskTrainer already"):
        trainer.evaluate()


def test_the_best_model_may_be_picked_by_a_compute_metrics_metric(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, compute_metrics=_mean_score,
                             args={"metric_for_best_model": "sts_mean_score"})
    assert trainer.args.metric_for_best_model == "sts_mean_score"


def test_a_best_model_metric_compute_metrics_does_not_return_is_refused_before_training(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, compute_metrics=_mean_score,
                             args={"metric_for_best_model": "sts_mean", "eval_strategy": "steps", "eval_steps": 1,
                                   "max_steps": 2})
    with pytest.raises(ValueError, match="'sts_mean' is neither .* it returns: sst_mean_score, sst_rows"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_compute_metrics_answering_something_else_than_a_dict_is_an_error_naming_it(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, compute_metrics=lambda prediction: None)
    with pytest.raises(TypeError, match="compute_metrics must return a dict .* for task 'sst' it returned NoneType"):
        trainer.evaluate()


def test_rows_passed_to_evaluate_are_checked_as_the_trainers_own_are(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer)
    with pytest.raises(ValueError, match="^eval_dataset: task 'sts': "):
        trainer.evaluate(eval_dataset={"sts": tiny_task_rows()["sts"].select([0])})


def test_the_tokenizer_saved_with_the_model_names_its_inputs(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, copy.deepcopy(tokenizer))
    trainer.save_model()
    saved = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    assert saved["model_input_names"] == ["input_ids", "token_type_ids", "attention_mask"]


def test_a_tokenizer_without_token_types_saved_with_the_model_returns_them_for_a_pair(tmp_path, tokenizer):  # noqa: F811
    # The trainer reads a pair's second sentence as segment B: a direct model(**tokenizer(a, b)) must too.
    plain = copy.deepcopy(tokenizer)
    plain.model_input_names = ["input_ids", "attention_mask"]
    trainer = _plain_trainer(tmp_path, plain)
    trainer.save_model()
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert reloaded("a b", "c")["token_type_ids"] == [0, 0, 0, 0, 1, 1]


# --- options refused -----------------------------------------------------------------------------------


def test_compute_loss_func_is_refused_naming_what_to_use(tmp_path, tokenizer):  # noqa: F811
    with pytest.raises(ValueError, match="^compute_loss_func: .*task_weights, or subclass and override task_losses$"):
        _plain_trainer(tmp_path, tokenizer, compute_loss_func=lambda outputs, labels, num_items_in_batch=None: 0)


def test_optimizer_cls_and_kwargs_is_refused_naming_optimizers(tmp_path, tokenizer):  # noqa: F811
    with pytest.raises(ValueError, match=r"^optimizer_cls_and_kwargs: .*optimizers=\(optimizer, scheduler\)"):
        _plain_trainer(tmp_path, tokenizer, optimizer_cls_and_kwargs=(torch.optim.SGD, {"lr": 0.1}))


@pytest.mark.parametrize("option", [{"layerwise_lr_decay": 0.9}, {"head_lr_multiplier": 10.0},
                                    {"use_torch_adamw": True}])
def test_an_option_shaping_the_optimizer_is_refused_beside_ones_own_optimizer(tmp_path, tokenizer, option):  # noqa: F811
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=f"^{next(iter(option))}: these shape the optimizer"):
        _plain_trainer(tmp_path, tokenizer, model=model, optimizers=(optimizer, None), args=option)


def test_freeze_embeddings_freezes_them_beside_ones_own_optimizer(tmp_path, tokenizer):  # noqa: F811
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = _plain_trainer(tmp_path, tokenizer, model=model, optimizers=(optimizer, None),
                             args={"freeze_embeddings": True, "max_steps": 1})
    before = model.get_input_embeddings().weight.detach().clone()
    trainer.train()
    assert torch.equal(model.get_input_embeddings().weight, before)


def test_one_process_seeing_several_gpus_is_refused_naming_the_launchers(tmp_path, tokenizer, monkeypatch):  # noqa: F811
    monkeypatch.setattr(MultitaskTrainingArguments, "n_gpu", property(lambda self: 2))
    with pytest.raises(ValueError, match="^this process sees 2 GPUs: .*torchrun"):
        _plain_trainer(tmp_path, tokenizer)


def test_a_weight_of_zero_on_every_training_task_is_refused(tmp_path, tokenizer):  # noqa: F811
    with pytest.raises(ValueError, match="every training task's loss is weighted 0"):
        _plain_trainer(tmp_path, tokenizer, args={"task_weights": "0"})


@pytest.mark.parametrize("given, named", [(["inputs", "loss"], "inputs loss"), ("inputs", "inputs")])
def test_include_for_metrics_is_refused_naming_what_compute_metrics_receives(tmp_path, given, named):
    with pytest.raises(ValueError, match=f"^--include_for_metrics {named}: .*scores and gold labels only"):
        _args(tmp_path, include_for_metrics=given)


def test_a_data_collator_that_batches_no_tasks_is_refused(tmp_path, tokenizer):  # noqa: F811
    with pytest.raises(TypeError, match="^data_collator: .*got DataCollatorWithPadding"):
        _plain_trainer(tmp_path, tokenizer, data_collator=DataCollatorWithPadding(tokenizer))


def _rows_with_a_weight_column():
    return {task: rows.add_column("weight", [0.5] * len(rows)) for task, rows in tiny_task_rows().items()}


def test_remove_unused_columns_false_hands_the_rows_other_columns_to_the_collator(tmp_path, tokenizer):  # noqa: F811
    from trainers.multitask_data import MultitaskCollator

    seen = set()

    class WeighingCollator(MultitaskCollator):
        def __call__(self, items):
            seen.update(column for _, row in items for column in row)
            return super().__call__(items)

    trainer = _plain_trainer(tmp_path, tokenizer, rows=_rows_with_a_weight_column(), data_collator=WeighingCollator(tokenizer),
                             args={"max_steps": 2, "remove_unused_columns": False})
    trainer.train()
    assert {"weight", "input_ids", "labels"} <= seen


def test_unused_columns_are_removed_before_the_collator_by_default(tmp_path, tokenizer):  # noqa: F811
    batch = next(iter(_plain_trainer(tmp_path, tokenizer, rows=_rows_with_a_weight_column()).get_train_dataloader()))
    assert all("weight" not in inputs for inputs in batch.values())


def test_a_task_without_rows_is_refused_naming_it(tmp_path, tokenizer):  # noqa: F811
    rows = tiny_task_rows()
    rows["sts"] = rows["sts"].select([])
    with pytest.raises(ValueError, match="^train_dataset: sts has no rows$"):
        _plain_trainer(tmp_path, tokenizer, rows=rows)


# --- rows as a transformers user has them -----------------------------------------------------------------


def test_rows_without_an_id_column_are_evaluated_and_predicted(tmp_path, tokenizer):  # noqa: F811
    rows = {task: dataset.remove_columns("id") for task, dataset in tiny_task_rows().items()}
    trainer = _plain_trainer(tmp_path, tokenizer, rows=rows)
    assert "eval_overall" in trainer.evaluate()
    assert len(trainer.predict({"sst": rows["sst"]})["sst"].predictions) == len(rows["sst"])


def test_labels_in_a_label_column_are_refused_naming_the_column_the_task_reads(tmp_path, tokenizer):  # noqa: F811
    rows = tiny_task_rows()
    rows["sst"] = rows["sst"].rename_column("sentiment", "label")
    with pytest.raises(ValueError, match="task 'sst' reads its labels from column 'sentiment'.*rename 'label' to 'sentiment'"):
        MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), train_dataset=rows, processing_class=tokenizer)


def test_an_eval_dataset_without_its_label_column_is_refused_before_training(tmp_path, tokenizer):  # noqa: F811
    rows = tiny_task_rows()
    unlabelled = {**rows, "sst": rows["sst"].rename_column("sentiment", "label")}
    with pytest.raises(ValueError, match="^eval_dataset: task 'sst': the rows have no 'sentiment' column.*rename 'label'"):
        MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), train_dataset=rows, processing_class=tokenizer,
                         eval_dataset=unlabelled)


def test_a_streamed_dataset_is_refused_naming_its_task(tmp_path, tokenizer):  # noqa: F811
    rows = tiny_task_rows()
    rows["sts"] = rows["sts"].to_iterable_dataset()
    with pytest.raises(TypeError, match=r"task 'sts': rows must be a datasets.Dataset \(load it without streaming"):
        _plain_trainer(tmp_path, tokenizer, rows=rows)


def test_rows_in_numpy_format_are_predicted_as_the_plain_rows_are(tmp_path, tokenizer):  # noqa: F811
    trainer, rows = _plain_trainer(tmp_path, tokenizer), tiny_task_rows()["sst"]
    in_numpy = trainer.predict({"sst": rows.with_format("numpy")})["sst"].predictions
    assert np.array_equal(in_numpy, trainer.predict({"sst": rows})["sst"].predictions)


def test_a_sentence_that_is_not_text_is_an_error_naming_its_row_and_column(tmp_path, tokenizer):  # noqa: F811
    rows = datasets.Dataset.from_dict({"sentence": ["a fine film", None], "sentiment": [3, 1]})
    with pytest.raises(ValueError, match="task 'sst', row 1, column 'sentence': expected text, got NoneType None"):
        _plain_trainer(tmp_path, tokenizer).predict({"sst": rows})


@pytest.mark.parametrize("role", ["train_dataset", "eval_dataset"])
@pytest.mark.parametrize("sentence, problem", [(None, "expected text, got NoneType None"), ("  \t", "empty sentence")])
def test_a_sentence_that_is_no_text_is_refused_when_the_trainer_is_built_naming_its_row(
        tmp_path, tokenizer, role, sentence, problem):  # noqa: F811
    sentences = list(tiny_task_rows()["sst"]["sentence"])
    sentences[2] = sentence
    bad = {**tiny_task_rows(), "sst": tiny_task_rows()["sst"].remove_columns("sentence").add_column("sentence", sentences)}
    with pytest.raises(ValueError, match=f"^{role}: task 'sst', row 2, column 'sentence': {problem}"):
        MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), processing_class=tokenizer,
                         **{"train_dataset": tiny_task_rows(), "eval_dataset": tiny_task_rows(), role: bad})


def _with_label(rows, task, row, label):
    column = {"sst": "sentiment", "para": "is_duplicate", "sts": "similarity"}[task]
    values = list(rows[task][column])
    values[row] = label
    return {**rows, task: rows[task].remove_columns(column).add_column(column, values)}


@pytest.mark.parametrize("task, label, problem", [
    ("sst", 7, "label 7 is not one of the task's labels"),
    ("para", 2.0, "label 2.0 is not one of the task's labels"),
    ("sts", 9.0, "label 9.0 is outside the task's range"),
    ("sts", None, "missing label"),
])
def test_a_training_label_that_is_not_the_tasks_is_refused_before_training_naming_its_row(
        tmp_path, tokenizer, task, label, problem):  # noqa: F811
    rows = _with_label(tiny_task_rows(), task, 5, label)
    with pytest.raises(ValueError, match=f"^train_dataset: task '{task}', row 5, column '.*': {problem}"):
        MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), train_dataset=rows, processing_class=tokenizer)


@pytest.mark.parametrize("task, label", [("sst", -100), ("para", 0.7)])
def test_training_labels_the_loss_takes_beside_the_scored_ones_are_accepted(tmp_path, tokenizer, task, label):  # noqa: F811
    rows = _with_label(tiny_task_rows(), task, 5, label)  # the ignore index; a soft paraphrase target
    trainer = MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), train_dataset=rows, processing_class=tokenizer)
    assert trainer.train_dataset.datasets[task]["labels"][5] == pytest.approx(label)


def test_an_eval_label_that_is_not_the_tasks_is_refused_before_training_naming_its_row(tmp_path, tokenizer):  # noqa: F811
    rows = tiny_task_rows()
    with pytest.raises(ValueError, match="^eval_dataset: task 'sst', row 2, column 'sentiment': label -1 is not one"):
        MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), train_dataset=rows, processing_class=tokenizer,
                         eval_dataset=_with_label(rows, "sst", 2, -1))


def _labels_as_text(rows):
    return {**rows, "sst": rows["sst"].cast_column("sentiment", datasets.Value("string"))}


def test_labels_written_as_numbers_in_text_train_as_those_numbers(tmp_path, tokenizer):  # noqa: F811
    rows = tiny_task_rows()
    trainer = _plain_trainer(tmp_path, tokenizer, rows=_labels_as_text(rows))
    assert trainer.train_dataset.datasets["sst"]["labels"] == list(rows["sst"]["sentiment"])


def test_labels_written_as_numbers_in_text_are_scored_as_those_numbers(tmp_path, tokenizer):  # noqa: F811
    rows = tiny_task_rows()
    output = _plain_trainer(tmp_path, tokenizer).predict({"sst": _labels_as_text(rows)["sst"]})["sst"]
    assert output.label_ids.tolist() == list(rows["sst"]["sentiment"])


def test_predict_on_rows_too_few_for_their_metric_returns_the_predictions_without_it(tmp_path, tokenizer):  # noqa: F811
    output = _plain_trainer(tmp_path, tokenizer).predict({"sts": tiny_task_rows()["sts"].select([0])})["sts"]
    assert output.predictions.shape == output.label_ids.shape == (1,)
    assert not any(key.startswith("test_sts_") for key in output.metrics)


def test_an_eval_dataset_that_cannot_give_its_score_is_refused_before_training(tmp_path, tokenizer):  # noqa: F811
    rows = tiny_task_rows()
    with pytest.raises(ValueError, match="^eval_dataset: task 'sts': a correlation needs at least 2 scored rows"):
        MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), train_dataset=rows, processing_class=tokenizer,
                         eval_dataset={**rows, "sts": rows["sts"].select([0])})


def test_a_tokenizer_that_pads_on_the_left_is_refused(tmp_path, tokenizer):  # noqa: F811
    left = copy.deepcopy(tokenizer)
    left.padding_side = "left"
    with pytest.raises(ValueError, match="processing_class pads on the left.*padding_side = 'right'"):
        _plain_trainer(tmp_path, left)


# --- model_init, callbacks, logs -------------------------------------------------------------------------


def test_model_init_builds_the_model_that_trains(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, model=None, model_init=lambda: tiny_model(), args={"max_steps": 2})
    trainer.train()
    assert trainer.state.global_step == 2 and trainer.model.config.hidden_size == 32


def test_a_hyperparameter_trial_trains_with_the_smart_mnr_and_task_weights_it_sets(tmp_path, tokenizer):  # noqa: F811
    pytest.importorskip("optuna", reason="optuna is a dev dependency (pip install -e '.[dev]')")
    trainer = _plain_trainer(tmp_path, tokenizer, model=None, model_init=lambda trial: scoring_tiny_model(),
                             args={"max_steps": 3, "task_sampling": "all_tasks"})

    def space(trial):
        return {"smart_weight": trial.suggest_categorical("smart_weight", ["sst=1"]),
                "mnr_weight": trial.suggest_categorical("mnr_weight", [1.0]),
                "task_weights": trial.suggest_categorical("task_weights", ["sts=0"])}

    trainer.hyperparameter_search(hp_space=space, backend="optuna", n_trials=1, direction="maximize",
                                  compute_objective=lambda metrics: metrics["eval_overall"])
    logs = _train_logs(trainer)
    assert all("smart_sst" in log and "mnr" in log for log in logs), logs
    assert trainer.task_weights["sts"] == 0 and trainer.smart.teacher is None


def test_a_hyperparameter_search_runs_every_trial_and_then_trains_the_best(tmp_path, tokenizer):  # noqa: F811
    pytest.importorskip("optuna", reason="optuna is a dev dependency (pip install -e '.[dev]')")
    trainer = _plain_trainer(tmp_path, tokenizer, model=None, model_init=lambda: scoring_tiny_model(),
                             args={"max_steps": 1})
    best = trainer.hyperparameter_search(hp_space=lambda trial: {"seed": trial.suggest_int("seed", 1, 9)},
                                         backend="optuna", n_trials=2)  # optuna releases the model between trials
    assert trainer.model is None
    trainer.args.seed = best.hyperparameters["seed"]
    trainer.train()  # the usual retrain with the best settings builds its model with model_init
    assert trainer.state.global_step == 1


def test_a_hyperparameter_search_maximizes_the_best_model_metric_by_default(tmp_path, tokenizer):  # noqa: F811
    pytest.importorskip("optuna", reason="optuna is a dev dependency (pip install -e '.[dev]')")
    trainer = _plain_trainer(tmp_path, tokenizer, model=None, model_init=lambda: scoring_tiny_model(),
                             args={"max_steps": 1})
    best = trainer.hyperparameter_search(hp_space=lambda trial: {"seed": trial.suggest_int("seed", 1, 9)},
                                         backend="optuna", n_trials=1)
    evaluated = [entry for entry in trainer.state.log_history if "eval_overall" in entry][-1]
    assert best.objective == evaluated["eval_overall"]  # Trainer's default summed every metric


def test_a_hyperparameter_trial_seeds_pcgrad_with_its_own_seed(tmp_path, tokenizer):  # noqa: F811
    pytest.importorskip("optuna", reason="optuna is a dev dependency (pip install -e '.[dev]')")
    trainer = _plain_trainer(tmp_path, tokenizer, model=None, model_init=lambda: scoring_tiny_model(),
                             args={"max_steps": 1, "task_sampling": "all_tasks", "pcgrad": True})
    trainer.hyperparameter_search(hp_space=lambda trial: {"seed": trial.suggest_categorical("seed", [7])},
                                  backend="optuna", n_trials=1, direction="maximize",
                                  compute_objective=lambda metrics: metrics["eval_overall"])
    assert trainer._pcgrad_generator.initial_seed() == 7


def _model_drawn_from_the_global_seed():
    seeded = torch.random.get_rng_state()  # as Trainer seeded it (tiny_model seeds its own weights)
    model = scoring_tiny_model()
    torch.random.set_rng_state(seeded)
    torch.nn.init.normal_(model.heads["sst"].layers[-1].weight)
    return model


def test_a_hyperparameter_trials_seed_draws_its_model_as_a_run_with_that_seed_does(tmp_path, tokenizer):  # noqa: F811
    pytest.importorskip("optuna", reason="optuna is a dev dependency (pip install -e '.[dev]')")
    trained = []

    class KeepTrainedWeights(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            trained.append({name: p.detach().clone() for name, p in model.state_dict().items()})

    for folder, seed, run in (("search", 42, "trial"), ("seed7", 7, "plain")):
        trainer = _plain_trainer(tmp_path / folder, tokenizer, model=None, model_init=_model_drawn_from_the_global_seed,
                                 args={"max_steps": 2, "seed": seed}, callbacks=[KeepTrainedWeights()])
        if run == "trial":  # the search's one trial sets seed 7 on arguments that say 42
            trainer.hyperparameter_search(hp_space=lambda trial: {"seed": trial.suggest_categorical("seed", [7])},
                                          backend="optuna", n_trials=1, direction="maximize",
                                          compute_objective=lambda metrics: metrics["eval_overall"])
        else:
            trainer.train()
    searched, plain = trained
    assert all(torch.equal(searched[name], weight) for name, weight in plain.items())


def test_arguments_assigned_after_the_trainer_is_built_are_the_ones_it_trains_with(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"max_steps": 1, "max_seq_length": 32})
    trainer.args.max_seq_length = 8
    trainer.args.task_weights = "sts=0.5"
    trainer.train()
    assert max(len(row["input_ids"]) for row in trainer.train_dataset.datasets["sst"]) == 8
    assert trainer.task_weights["sts"] == 0.5


def test_a_max_seq_length_assigned_beyond_the_models_positions_is_refused_before_training(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"max_steps": 1})
    trainer.args.max_seq_length = 128  # the tiny model has 64 positions
    with pytest.raises(ValueError, match="max_seq_length"):
        trainer.train()
    assert trainer.state.global_step == 0 and not trainer.is_in_train  # refused before Trainer.train began


def test_a_train_dataset_assigned_after_the_trainer_is_built_is_kept_when_an_argument_changes(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"max_steps": 1})
    rows = tiny_task_rows()
    own = _plain_trainer(tmp_path / "other", tokenizer, rows={"sst": rows["sst"]}).train_dataset
    trainer.train_dataset = own
    trainer.args.learning_rate = 5e-4
    trainer.train()
    assert trainer.train_dataset is own


def test_smarts_mean_teacher_starts_as_the_model_model_init_builds_for_training(tmp_path, tokenizer):  # noqa: F811
    calls = []

    def another_model_each_call():  # Trainer calls model_init in __init__ and again in train()
        calls.append(1)
        return tiny_model(seed=len(calls))

    trainer = _plain_trainer(tmp_path, tokenizer, model=None, model_init=another_model_each_call,
                             args={"max_steps": 1, "learning_rate": 0.0, "smart_weight": "sst=1",
                                   "smart_proximal_weight": 1.0})
    trainer.train()  # at a rate of 0 the model stays where it started, and so does a teacher that started there
    teacher = dict(trainer.smart.teacher.model.named_parameters())
    assert all(torch.equal(teacher[name], p) for name, p in trainer.model.named_parameters())


def test_pcgrad_trains_the_shared_encoder_of_a_compiled_model(tmp_path, tokenizer):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"max_steps": 1, "task_sampling": "all_tasks", "pcgrad": True,
                                                         "torch_compile": True, "torch_compile_backend": "eager"})
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if name.startswith("bert.")}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert all(not torch.equal(after[name], value) for name, value in before.items() if "LayerNorm" not in name)


def test_predict_calls_the_callbacks_on_predict(tmp_path, tokenizer):  # noqa: F811
    seen = []

    class Record(TrainerCallback):
        def on_predict(self, args, state, control, metrics=None, **kwargs):
            seen.append(metrics)

    trainer = _plain_trainer(tmp_path, tokenizer, callbacks=[Record()])
    trainer.predict({"sst": tiny_task_rows()["sst"]})
    assert len(seen) == 1 and "test_sst_accuracy" in seen[0]


def test_tokens_seen_count_every_real_token_of_every_task_batch(tmp_path, tokenizer):  # noqa: F811
    trainer = _trainer(tmp_path, tokenizer, include_num_input_tokens_seen="non_padding")
    expected = sum(int(batch[key].sum()) for step in trainer.get_train_dataloader() for batch in step.values()
                   for key in ("attention_mask", "attention_mask_a", "attention_mask_b") if key in batch)
    trainer.train()
    assert trainer.state.num_input_tokens_seen == expected > 0


def test_loss_terms_no_log_reached_before_a_train_call_are_not_logged_by_it(tmp_path, tokenizer):  # noqa: F811
    trainer = _trainer(tmp_path, tokenizer, max_steps=1)
    trainer._record("loss_left_over", torch.tensor(5.0))  # as the last steps of an earlier call leave their terms
    trainer.train()
    assert not any("loss_left_over" in entry for entry in trainer.state.log_history)


def test_warmup_ratio_warms_the_learning_rate_up_over_that_share_of_the_steps(tmp_path, tokenizer):  # noqa: F811
    trainer = _trainer(tmp_path, tokenizer, max_steps=4, warmup_ratio=0.5)
    trainer.train()
    assert [entry["learning_rate"] for entry in _train_logs(trainer)] == pytest.approx([0.0, 5e-4, 1e-3, 5e-4])


def test_arguments_with_a_warmup_ratio_build_again_from_their_own_fields():
    args = MultitaskTrainingArguments(output_dir="unused", warmup_ratio=0.06)
    fields = {name: getattr(args, name) for name in ("output_dir", "warmup_ratio", "warmup_steps")}
    assert MultitaskTrainingArguments(**fields).get_warmup_steps(1000) == 60


def test_a_copy_with_the_warmup_ratio_removed_trains_without_warmup():
    args = dataclasses.replace(MultitaskTrainingArguments(output_dir="unused", warmup_ratio=0.5), warmup_ratio=0.0)
    assert args.get_warmup_steps(1000) == 0


def test_a_copy_for_a_run_without_sst_leaves_the_default_token_budget_aside():
    args = dataclasses.replace(MultitaskTrainingArguments(output_dir="unused"), output_dir="elsewhere")
    assert args.token_budgets(["para", "sts"]) is None
    args.check_tasks(["para", "sts"])


@pytest.mark.parametrize("change", [{"task_sampling": "round_robin"}, {"group_by_length": False}])
def test_a_copy_with_sampling_that_cannot_pack_turns_the_default_token_budget_off(change):
    args = dataclasses.replace(MultitaskTrainingArguments(output_dir="unused"), **change)
    assert args.token_budgets(["sst", "para"]) is None


def test_the_default_recipe_has_no_warmup():
    assert MultitaskTrainingArguments(output_dir="unused").get_warmup_steps(1000) == 0


def test_the_logged_learning_rate_is_the_top_layers_under_layerwise_decay(tmp_path, tokenizer):  # noqa: F811
    trainer = _trainer(tmp_path, tokenizer, max_steps=1, layerwise_lr_decay=0.5, lr_scheduler_type="constant",
                       warmup_ratio=0.0)
    trainer.train()
    assert _train_logs(trainer)[0]["learning_rate"] == pytest.approx(1e-3)


def test_resuming_a_checkpoint_without_optimizer_state_says_the_optimizer_and_schedule_start_afresh(
    tmp_path, tokenizer, caplog  # noqa: F811
):
    first = _plain_trainer(tmp_path / "a", tokenizer, args={"save_strategy": "steps", "save_steps": 2, "max_steps": 2,
                                                            "save_only_model": True})
    first.train()
    checkpoint = tmp_path / "a" / "out" / "checkpoint-2"
    resumed = _plain_trainer(tmp_path / "b", tokenizer, args={"max_steps": 3})
    with caplog.at_level("WARNING"):
        resumed.train(resume_from_checkpoint=str(checkpoint))
    assert f"{checkpoint} holds no optimizer state (a save_only_model checkpoint)" in caplog.text
    assert "SMART" not in caplog.text and "PCGrad" not in caplog.text  # neither trains here


def test_prediction_loss_only_is_refused_as_evaluation_reports_metrics_and_no_loss(tmp_path):
    with pytest.raises(ValueError, match="--prediction_loss_only: MultitaskTrainer evaluates each task by its metrics"):
        _args(tmp_path, prediction_loss_only=True)


def test_a_checkpoint_holds_optimizer_state_only_with_its_optimizer_and_scheduler_as_trainer_restores_them(tmp_path):
    from trainers.trainer import _has_optimizer_state

    (tmp_path / "optimizer.pt").write_bytes(b"")
    assert not _has_optimizer_state(tmp_path)  # Trainer restores neither without scheduler.pt
    (tmp_path / "scheduler.pt").write_bytes(b"")
    assert _has_optimizer_state(tmp_path)
    (tmp_path / "optimizer.pt").unlink()
    (tmp_path / "optimizer_0").mkdir()  # FSDP's sharded optimizer state
    assert _has_optimizer_state(tmp_path)


@pytest.mark.parametrize("disable_tqdm", [True, False])
def test_the_tokenizing_progress_bars_follow_disable_tqdm(tmp_path, tokenizer, capfd, disable_tqdm):  # noqa: F811
    capfd.readouterr()
    _plain_trainer(tmp_path, tokenizer, args={"disable_tqdm": disable_tqdm})
    assert ("tokenizing sst" in capfd.readouterr().err) is not disable_tqdm


# --- log_level: the project's own loggers follow it, as transformers' do under Trainer -------------------


@pytest.fixture
def project_logger_levels():
    """Restores the project's loggers (levels and handlers) a test's trainer sets."""
    import logging

    from trainers.log_level import PROJECT_LOGGERS

    loggers = [logging.getLogger(name) for name in PROJECT_LOGGERS]
    saved = [(logger.level, list(logger.handlers)) for logger in loggers]
    yield loggers
    for logger, (level, handlers) in zip(loggers, saved):
        logger.setLevel(level)
        logger.handlers[:] = handlers


def test_log_level_sets_the_project_loggers_as_trainer_sets_transformers(tmp_path, tokenizer, project_logger_levels):  # noqa: F811
    _plain_trainer(tmp_path, tokenizer, args={"log_level": "info"})
    assert [logger.level for logger in project_logger_levels] == [20, 20, 20]


def test_a_passive_log_level_leaves_the_project_loggers_to_the_callers_configuration(tmp_path, tokenizer,  # noqa: F811
                                                                                        project_logger_levels):
    for logger in project_logger_levels:
        logger.setLevel(40)
    _plain_trainer(tmp_path, tokenizer)
    assert [logger.level for logger in project_logger_levels] == [40, 40, 40]


def test_log_level_info_prints_the_training_rows_report_in_a_script_that_configures_no_logging(tmp_path, minilm_path):
    script = f"""
        from transformers import AutoTokenizer
        from tests.helpers import tiny_model, tiny_task_rows
        from trainers import MultitaskTrainer, MultitaskTrainingArguments
        args = MultitaskTrainingArguments(output_dir={str(tmp_path)!r}, report_to="none", use_cpu=True,
                                          disable_tqdm=True, log_level="info", max_seq_length=32)
        rows = tiny_task_rows()
        MultitaskTrainer(model=tiny_model(), args=args, train_dataset=rows, eval_dataset=rows,
                         processing_class=AutoTokenizer.from_pretrained({str(minilm_path)!r}))
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("sst: 0 of 24 examples truncated at max_length=32") == 1  # logged once, by its reader


@pytest.mark.parametrize("flag, dtype", [("bf16_full_eval", torch.bfloat16), ("fp16_full_eval", torch.float16)])
def test_full_eval_precision_flags_evaluate_and_predict_in_that_precision_outside_training(tmp_path, tokenizer, flag, dtype):  # noqa: F811
    seen = set()
    model = tiny_model()
    model.bert.encoder.layer[0].register_forward_hook(lambda module, inputs, output: seen.add(output[0].dtype))
    rows = tiny_task_rows(n=8)
    trainer = MultitaskTrainer(model=model, args=_args(tmp_path, bf16=False, **{flag: True}), eval_dataset=rows,
                               processing_class=tokenizer)
    trainer.evaluate()
    trainer.predict({"sst": rows["sst"]})
    assert seen == {dtype} and model.dtype == dtype  # as Trainer's evaluation loop casts it


def test_bf16_full_eval_alone_runs_on_a_cpu_without_use_cpu(tmp_path):
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), bf16=False, bf16_full_eval=True, report_to="none")
    assert args.bf16_full_eval and (args.use_cpu or torch.cuda.is_available())


def test_a_warmup_as_long_as_the_run_is_warned_of(tmp_path, tokenizer, caplog):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"warmup_steps": 1000, "max_steps": 10})
    trainer.create_optimizer()
    with caplog.at_level("WARNING", logger="trainers.trainer"):
        trainer.create_scheduler(num_training_steps=10)
    assert any("the warmup (1000 steps) is as long as the whole run (10 steps)" in message for message in caplog.messages)


def test_gathering_an_embedding_loss_in_one_process_is_warned_of(tmp_path, tokenizer, caplog):  # noqa: F811
    with caplog.at_level("WARNING", logger="trainers.trainer"):
        _plain_trainer(tmp_path, tokenizer, args={"mnr_weight": 1.0, "mnr_gather_across_devices": True})
    assert any("--mnr_gather_across_devices: one process trains" in message for message in caplog.messages)


@pytest.mark.parametrize("checkpoint, kept", [("out/checkpoint-4", "step 4's, the last checkpoint that was the best "
                                                                    "so far when it was saved"),
                                              (None, "the last step's")])
def test_a_best_evaluation_that_saved_no_checkpoint_is_warned_of_naming_the_model_kept(
        tmp_path, tokenizer, caplog, checkpoint, kept):  # noqa: F811
    trainer = _plain_trainer(tmp_path, tokenizer, args={"load_best_model_at_end": True, "eval_strategy": "steps",
                                                        "save_strategy": "steps", "eval_steps": 1, "save_steps": 4})
    trainer.state.global_step, trainer.state.best_global_step, trainer.state.best_model_checkpoint = 8, 5, checkpoint
    with caplog.at_level("WARNING", logger="trainers.trainer"):
        trainer._warn_if_the_best_evaluation_was_not_kept()
    assert f"The best evaluation (step 5) saved no checkpoint: the model kept is {kept}" in caplog.text


@pytest.mark.parametrize("flag, value", [("train_sampling_strategy", "sequential"), ("length_column_name", "n_tokens")])
def test_trainers_sampler_flags_are_refused_naming_the_flags_that_shape_the_batches(tmp_path, flag, value):
    with pytest.raises(ValueError, match=f"^--{flag} {value}: MultitaskTrainer draws each step's batch by --task_sampling"):
        _args(tmp_path, **{flag: value})


@pytest.mark.parametrize("given, named", [(["target"], "target"), ([], "(none)"), ("target", "target")])
def test_label_names_other_than_labels_are_refused(tmp_path, given, named):
    with pytest.raises(ValueError, match=re.escape(f"--label_names {named}: every task's rows hold their labels as 'labels'")):
        _args(tmp_path, label_names=given)


def test_label_names_of_labels_alone_are_accepted(tmp_path):
    assert _args(tmp_path, label_names=["labels"]).label_names == ["labels"]  # what silences PEFT's warning


def test_changed_arguments_are_read_again_after_ones_own_pop_callback_of_smarts_mean_teacher(tmp_path, tokenizer):  # noqa: F811
    from trainers.multitask_state import MeanTeacherUpdate

    trainer = _plain_trainer(tmp_path, tokenizer, args={"smart_weight": "sst=1", "smart_proximal_weight": 1.0,
                                                        "max_steps": 1})
    trainer.pop_callback(MeanTeacherUpdate)
    trainer.args.learning_rate = 1e-4
    trainer.train()
    assert sum(isinstance(c, MeanTeacherUpdate) for c in trainer.callback_handler.callbacks) == 1
