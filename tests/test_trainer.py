"""MultitaskTrainer: training with every technique, evaluation, logging, checkpoints and resume."""
import json

import pytest
import torch
from transformers import AutoTokenizer, HfArgumentParser, TrainerCallback

from tests.helpers import tiny_model, tiny_task_rows
from trainers import MultitaskTrainer, MultitaskTrainingArguments


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def _args(tmp_path, **overrides):
    settings = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_train_epochs=1,
                    logging_steps=1, eval_strategy="no", save_strategy="no", report_to="none", use_cpu=True,
                    learning_rate=1e-3, seed=0, max_seq_length=32, disable_tqdm=True)
    settings.update(overrides)
    return MultitaskTrainingArguments(**settings)


def _trainer(tmp_path, tokenizer, model=None, rows=None, callbacks=None, **overrides):
    rows = rows or tiny_task_rows()
    return MultitaskTrainer(model=model or tiny_model(), args=_args(tmp_path, **overrides), train_dataset=rows,
                            eval_dataset=rows, processing_class=tokenizer, callbacks=callbacks)


def _train_logs(trainer):
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def _weights(model):
    return {name: p.detach().clone() for name, p in model.state_dict().items()}


def test_training_changes_weights_and_logs_each_tasks_loss(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer)
    before = _weights(trainer.model)
    trainer.train()
    after = _weights(trainer.model)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    logged = {key for entry in _train_logs(trainer) for key in entry}
    assert {"loss_sst", "loss_para", "loss_sts"} <= logged


def test_proportional_sampling_visits_every_example_once_per_epoch(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer)
    loader = trainer.get_train_dataloader()
    counts = {}
    for batch in loader:
        (task, inputs), = batch.items()
        counts[task] = counts.get(task, 0) + len(inputs["labels"])
    assert counts == {"sst": 24, "para": 24, "sts": 24}


def test_all_tasks_batches_hold_every_task(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, task_sampling="all_tasks")
    batch = next(iter(trainer.get_train_dataloader()))
    assert list(batch) == ["sst", "para", "sts"]


def test_logged_loss_is_not_inflated_by_gradient_accumulation(tmp_path, tokenizer):
    # Same data and schedule seen as 2 micro-batches of 4 per step instead of 1 batch of 8: the logged
    # loss is a per-example mean in both cases (Trainer must not treat it as pre-scaled).
    rows = {"sst": tiny_task_rows()["sst"]}
    first = _trainer(tmp_path / "a", tokenizer, model=tiny_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
                     rows=rows, learning_rate=1e-12, per_device_train_batch_size=8)
    first.train()
    second = _trainer(tmp_path / "b", tokenizer, model=tiny_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
                      rows=rows, learning_rate=1e-12, per_device_train_batch_size=4, gradient_accumulation_steps=2)
    second.train()
    mean_first = sum(e["loss"] for e in _train_logs(first)) / len(_train_logs(first))
    mean_second = sum(e["loss"] for e in _train_logs(second)) / len(_train_logs(second))
    assert mean_second == pytest.approx(mean_first, rel=0.05)


def test_evaluate_reports_task_metrics_and_overall_scores(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer)
    metrics = trainer.evaluate()
    for key in ("eval_sst_accuracy", "eval_para_accuracy", "eval_sts_pearson", "eval_sts_spearman", "eval_overall", "eval_mean"):
        assert key in metrics
    expected = (metrics["eval_sst_accuracy"] + metrics["eval_para_accuracy"] + (metrics["eval_sts_pearson"] + 1) / 2) / 3
    assert metrics["eval_overall"] == pytest.approx(expected)


def test_best_model_by_overall_is_loaded_at_end(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, num_train_epochs=2, eval_strategy="epoch", save_strategy="epoch",
                       load_best_model_at_end=True)
    trainer.train()
    overall = [e["eval_overall"] for e in trainer.state.log_history if "eval_overall" in e]
    assert len(overall) == 2
    assert trainer.state.best_metric == pytest.approx(max(overall))
    saved = json.loads((tmp_path / "out" / trainer.state.best_model_checkpoint.split("/")[-1] / "config.json").read_text())
    assert saved["auto_map"]["AutoModel"] == "modeling_minbert.MinBertForMultitask"


def test_mnr_term_is_logged_and_trains(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, mnr_weight=0.5)
    trainer.train()
    mnr = [e["mnr"] for e in _train_logs(trainer) if "mnr" in e]
    assert mnr and all(value >= 0 for value in mnr)


def test_pcgrad_requires_all_tasks_sampling(tmp_path):
    with pytest.raises(ValueError, match="all_tasks"):
        _args(tmp_path, pcgrad=True)


def test_pcgrad_step_trains_and_counts_projections(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, task_sampling="all_tasks", pcgrad=True)
    before = _weights(trainer.model)
    trainer.train()
    assert any(not torch.equal(before[k], v) for k, v in _weights(trainer.model).items())
    assert any("pcgrad_projections" in e for e in _train_logs(trainer))


def test_layerwise_lr_decay_reaches_the_optimizer(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, layerwise_lr_decay=0.5, head_lr_multiplier=4.0)
    optimizer = trainer.create_optimizer()
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert lrs["layer_1/decay"] == pytest.approx(1e-3)
    assert lrs["layer_0/decay"] == pytest.approx(5e-4)
    assert lrs["embeddings/no_decay"] == pytest.approx(2.5e-4)
    assert lrs["heads/decay"] == pytest.approx(4e-3)


def test_frozen_encoder_trains_only_the_heads(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, freeze_encoder=True)
    before = _weights(trainer.model)
    trainer.train()
    after = _weights(trainer.model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("heads.") for k in changed)


def test_unknown_task_in_train_dataset_is_an_error(tmp_path, tokenizer):
    rows = tiny_task_rows()
    with pytest.raises(ValueError, match="no head for"):
        _trainer(tmp_path, tokenizer, rows={**rows, "nli": rows["sst"]})


def test_arguments_parse_from_command_line_and_json(tmp_path):
    parser = HfArgumentParser(MultitaskTrainingArguments)
    (cli,) = parser.parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--task_sampling", "temperature", "--smart_weight", "sst=2,para=6,sts=8", "--pcgrad", "false"]
    )
    assert cli.task_sampling == "temperature"
    assert cli.per_task("smart_weight", ["sst", "para", "sts"], 0.0) == {"sst": 2.0, "para": 6.0, "sts": 8.0}
    config = tmp_path / "args.json"
    config.write_text(json.dumps({"output_dir": str(tmp_path), "mnr_weight": 0.3, "layerwise_lr_decay": 0.95}))
    (from_json,) = parser.parse_json_file(str(config))
    assert from_json.mnr_weight == 0.3 and from_json.layerwise_lr_decay == 0.95


def test_per_task_option_rejects_unknown_task(tmp_path):
    args = _args(tmp_path, smart_weight="sst=2,nli=3")
    with pytest.raises(ValueError, match="unknown task 'nli'"):
        args.per_task("smart_weight", ["sst", "para", "sts"], 0.0)


def test_bad_sampling_strategy_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="round_robin"):
        _args(tmp_path, task_sampling="roundrobin")


class _StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = True
            control.should_training_stop = True


def test_resume_mid_epoch_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, tokenizer):
    common = dict(num_train_epochs=2, task_sampling="proportional", save_strategy="steps", save_steps=1000)
    full = _trainer(tmp_path / "full", tokenizer, model=tiny_model(seed=1), **common)
    full.train()

    interrupted = _trainer(tmp_path / "cut", tokenizer, model=tiny_model(seed=1), callbacks=[_StopAt(4)], **common)
    interrupted.train()  # 9 steps per epoch: stops at step 4, mid-epoch, after saving checkpoint-4
    resumed = _trainer(tmp_path / "cut", tokenizer, model=tiny_model(seed=1), **common)
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "out" / "checkpoint-4"))

    assert resumed.state.global_step == full.state.global_step == 18
    expected = _weights(full.model)
    for name, value in _weights(resumed.model).items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6, msg=name)


def test_smart_terms_are_logged_for_tasks_with_a_weight(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, smart_weight="sst=2,para=0,sts=8")
    trainer.train()
    logged = {key for entry in _train_logs(trainer) for key in entry}
    assert {"smart_sst", "smart_sts"} <= logged and "smart_para" not in logged


def test_proximal_point_moves_the_mean_teacher_after_each_step(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, smart_weight="0", smart_proximal_weight=1.0, max_steps=2)
    teacher = trainer.smart.teacher
    start = [p.detach().clone() for p in teacher.model.parameters()] if hasattr(teacher, "model") else None
    trainer.train()
    assert start is not None, "MeanTeacher keeps its copy in .model"
    moved = [not torch.equal(a, b) for a, b in zip(start, teacher.model.parameters())]
    assert any(moved)


def test_cosine_feature_heads_train_with_smart_and_evaluate(tmp_path, tokenizer):
    from hf_minbert import MinBertConfig

    tasks = MinBertConfig().tasks
    for task in ("para", "sts"):
        tasks[task] = {**tasks[task], "cosine_feature": True}
    trainer = _trainer(tmp_path, tokenizer, model=tiny_model(tasks=tasks), smart_weight="1")
    trainer.train()
    assert {"smart_para", "smart_sts"} <= {key for entry in _train_logs(trainer) for key in entry}
    assert "eval_overall" in trainer.evaluate()
