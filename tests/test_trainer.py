"""MultitaskTrainer: training with every technique, evaluation, logging, checkpoints and resume."""
import collections
import json
import re

import datasets
import pytest
import torch
from transformers import AutoTokenizer, HfArgumentParser, TrainerCallback

from hf_minbert.commands.head_options import base_task_specs, task_specs
from hf_minbert.commands.train_arguments import ModelArguments
from hf_minbert.data import DataError
from tests.helpers import scoring_tiny_model, tiny_model, tiny_task_rows
from trainers import MultitaskTrainer, MultitaskTrainingArguments
from trainers.sampling import SAMPLING_STRATEGIES, MultitaskBatchSampler


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def _args(tmp_path, **overrides):
    # fp32 unless a test asks for bf16: the default follows the machine (bf16 where the CPU has AMX), and in bf16 a
    # tiny random STS head's nearly equal scores round to a constant, whose correlation is undefined
    settings = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_train_epochs=1,
                    logging_steps=1, eval_strategy="no", save_strategy="no", report_to="none", use_cpu=True,
                    learning_rate=1e-3, seed=0, max_seq_length=32, disable_tqdm=True, bf16=False)
    settings.update(overrides)
    return MultitaskTrainingArguments(**settings)


def _trainer(tmp_path, tokenizer, model=None, rows=None, callbacks=None, always_rows=None, **overrides):
    rows = rows or tiny_task_rows()
    return MultitaskTrainer(model=model or tiny_model(), args=_args(tmp_path, **overrides), train_dataset=rows,
                            eval_dataset=rows, processing_class=tokenizer, callbacks=callbacks, always_rows=always_rows)


def _train_logs(trainer):
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def _weights(model):
    return {name: p.detach().clone() for name, p in model.state_dict().items()}


@pytest.mark.slow
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


def test_a_capped_task_reads_its_always_rows_every_epoch_beside_its_cap(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, task_epoch_rows="sst=8", always_rows={"sst": 4})
    sampler = trainer.get_train_dataloader().batch_sampler
    for epoch in range(2):
        sampler.set_epoch(epoch)
        sst = [i for batch in sampler for i in batch if sampler.task_of(i) == "sst"]
        assert len(sst) == 12 and set(range(4)) <= {i - sampler.offsets["sst"] for i in sst}


def _tokenized_sst(count, label=0):
    return datasets.Dataset.from_dict({"input_ids": [[101, 2204, 102]] * count, "attention_mask": [[1, 1, 1]] * count,
                                       "token_type_ids": [[0, 0, 0]] * count, "labels": [label] * count})


def test_the_built_in_cap_on_an_epochs_sst_rows_is_a_warning_where_it_cuts_rows_of_ones_own(tmp_path, tokenizer, caplog):
    trainer = MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), processing_class=tokenizer,
                               train_dataset={**tiny_task_rows(), "sst": _tokenized_sst(16_010)})
    with caplog.at_level("WARNING", logger="trainers.train_batches"):
        trainer.get_train_dataloader()
    assert "sst: each epoch reads 16000 of its 16010 training rows (--task_epoch_rows sst=16000, the built-in" in caplog.text


def test_temperature_one_takes_the_steps_proportional_takes_under_the_built_in_sst_cap(tmp_path, tokenizer):
    def steps_per_task(**overrides):
        trainer = MultitaskTrainer(model=tiny_model(), args=_args(tmp_path, **overrides), processing_class=tokenizer,
                                   train_dataset={**tiny_task_rows(), "sst": _tokenized_sst(16_010)})
        sampler = trainer.get_train_dataloader().batch_sampler
        return collections.Counter(batch.task for (batch,) in sampler.plan(0))

    proportional = steps_per_task(batch_tokens="")
    assert proportional["sst"] == 2000  # 16,000 of the 16,010 rows in batches of 8
    assert steps_per_task(task_sampling="temperature", sampling_temperature=1.0) == proportional


def test_tokenized_training_rows_with_a_label_the_head_cannot_learn_are_refused_naming_the_row(tmp_path, tokenizer):
    rows = {**tiny_task_rows(), "sst": datasets.concatenate_datasets([_tokenized_sst(3), _tokenized_sst(1, label=7)])}
    with pytest.raises(DataError, match="task 'sst', row 3, column 'labels': 7 is not a label its classification head"):
        MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), train_dataset=rows, processing_class=tokenizer)


def test_tokenized_training_rows_without_the_ids_their_head_reads_are_refused_naming_them(tmp_path, tokenizer):
    sides_only = _tokenized_sst(4).rename_column("input_ids", "input_ids_a")
    with pytest.raises(ValueError, match="task 'sst': its tokenized rows lack input_ids, which its head reads"):
        MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), processing_class=tokenizer,
                         train_dataset={**tiny_task_rows(), "sst": sides_only})


def test_tokenized_evaluation_rows_are_refused_asking_for_the_raw_rows(tmp_path, tokenizer):
    with pytest.raises(ValueError, match="eval_dataset: task 'sst': its rows are tokenized; .* give the raw rows"):
        MultitaskTrainer(model=tiny_model(), args=_args(tmp_path), processing_class=tokenizer,
                         train_dataset=tiny_task_rows(), eval_dataset={"sst": _tokenized_sst(4)})


def test_trainers_count_of_examples_is_the_rows_an_epoch_reads(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, task_epoch_rows="sst=8")
    loader = trainer.get_train_dataloader()
    assert trainer.num_examples(loader) == sum(len(batch) for batch in loader.batch_sampler) == 8 + 24 + 24


def test_rows_trained_by_max_steps_are_those_an_epoch_of_as_many_steps_reads(tmp_path, tokenizer):
    # Trainer counts max_steps batches of batch-size rows (train_samples_per_second); an all_tasks step reads three.
    by_epoch = _trainer(tmp_path, tokenizer, task_sampling="all_tasks")
    loader = by_epoch.get_train_dataloader()
    by_steps = _trainer(tmp_path, tokenizer, task_sampling="all_tasks", max_steps=len(loader))
    rows = by_epoch.set_initial_training_values(by_epoch.args, loader)[3]
    assert by_steps.set_initial_training_values(by_steps.args, by_steps.get_train_dataloader())[3] == rows == 72


def test_task_epoch_passes_reads_a_tasks_rows_that_many_times_an_epoch(tmp_path, tokenizer):
    sampler = _trainer(tmp_path, tokenizer, task_epoch_passes="sts=2").get_train_dataloader().batch_sampler
    sts = [i - sampler.offsets["sts"] for batch in sampler for i in batch if sampler.task_of(i) == "sts"]
    assert sorted(sts) == sorted(list(range(24)) * 2)


def test_task_epoch_passes_naming_a_task_without_data_fails_before_tokenizing(tmp_path, tokenizer, monkeypatch):
    import trainers.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "training_dataset", lambda *a, **k: pytest.fail("tokenized first"))
    with pytest.raises(ValueError, match="--task_epoch_passes: unknown task 'nli'"):
        _trainer(tmp_path, tokenizer, task_epoch_passes="nli=2")


def test_batch_tokens_packs_a_tasks_short_rows_into_fewer_fuller_batches(tmp_path, tokenizer):
    plain = _trainer(tmp_path, tokenizer, batch_tokens="").get_train_dataloader().batch_sampler
    packed = _trainer(tmp_path, tokenizer, batch_tokens="sst=4096").get_train_dataloader().batch_sampler
    sst_steps = [sum(tasks == ("sst",) for tasks in sampler.task_schedule(0)) for sampler in (plain, packed)]
    assert sst_steps[1] < sst_steps[0]
    assert len(packed) == len(plain) - (sst_steps[0] - sst_steps[1])  # the other tasks' steps are unchanged


def test_the_training_loader_takes_trainers_worker_options(tmp_path, tokenizer):
    loader = _trainer(tmp_path, tokenizer, dataloader_num_workers=1, dataloader_persistent_workers=True,
                      dataloader_prefetch_factor=4).get_train_dataloader()
    assert (loader.num_workers, loader.persistent_workers, loader.prefetch_factor) == (1, True, 4)


def test_a_max_seq_length_beyond_the_models_positions_fails_before_tokenizing(tmp_path, tokenizer, monkeypatch):
    import trainers.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "training_dataset", lambda *a, **k: pytest.fail("tokenized first"))
    with pytest.raises(ValueError, match=r"max_seq_length=128 exceeds the model's max_position_embeddings \(64\)"):
        _trainer(tmp_path, tokenizer, max_seq_length=128)


def test_the_optimizers_parameter_groups_and_their_rates_are_logged(tmp_path, tokenizer, caplog):
    trainer = _trainer(tmp_path, tokenizer, layerwise_lr_decay=0.5)
    with caplog.at_level("INFO", logger="trainers.trainer"):
        optimizer = trainer.create_optimizer()
    rates = {f"lr={group['lr']:.3e}" for group in optimizer.param_groups}
    assert len(rates) > 1 and all(rate in caplog.text for rate in rates)


def test_always_rows_beyond_a_tasks_rows_are_refused(tmp_path, tokenizer):
    with pytest.raises(ValueError, match=r"always_rows\['sst'\]=99: expected 0..24"):
        _trainer(tmp_path, tokenizer, always_rows={"sst": 99})


@pytest.mark.parametrize("strategy", SAMPLING_STRATEGIES)
def test_train_batches_follow_the_chosen_sampling_strategy(tmp_path, tokenizer, strategy):
    rows = tiny_task_rows()
    rows["para"] = rows["para"].select(range(16))  # unequal sizes, so that the strategies differ
    trainer = _trainer(tmp_path, tokenizer, rows=rows, task_sampling=strategy, group_by_length=False)
    plan = MultitaskBatchSampler({"sst": 24, "para": 16, "sts": 24}, 8, strategy, seed=0).plan(0)
    batches = list(trainer.get_train_dataloader())
    assert [list(batch) for batch in batches] == [[b.task for b in step] for step in plan]
    assert [[len(inputs["labels"]) for inputs in batch.values()] for batch in batches] == [
        [len(b.indices) for b in step] for step in plan
    ]


def test_all_tasks_batches_hold_every_task(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, task_sampling="all_tasks")
    batch = next(iter(trainer.get_train_dataloader()))
    assert list(batch) == ["sst", "para", "sts"]


@pytest.mark.slow
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
    trainer = _trainer(tmp_path, tokenizer, model=scoring_tiny_model())
    metrics = trainer.evaluate()
    for key in ("eval_sst_accuracy", "eval_para_accuracy", "eval_sts_pearson", "eval_sts_spearman", "eval_overall", "eval_mean"):
        assert key in metrics
    expected = (metrics["eval_sst_accuracy"] + metrics["eval_para_accuracy"] + (metrics["eval_sts_pearson"] + 1) / 2) / 3
    assert metrics["eval_overall"] == pytest.approx(expected)


def test_predict_gives_each_tasks_scores_gold_labels_and_the_metrics_evaluate_reports(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, model=scoring_tiny_model())
    rows = tiny_task_rows()
    outputs = trainer.predict(rows)
    metrics = trainer.evaluate()
    assert outputs["sst"].predictions.shape == (24, 5) and outputs["para"].predictions.shape == (24,)
    assert list(outputs["sts"].label_ids) == pytest.approx(rows["sts"]["similarity"])
    assert outputs["sst"].metrics["test_sst_accuracy"] == metrics["eval_sst_accuracy"]
    assert outputs["sts"].metrics["test_sts_pearson"] == pytest.approx(metrics["eval_sts_pearson"])


SPEED_METRICS = {"test_runtime", "test_samples_per_second", "test_steps_per_second"}


def test_predict_on_unlabelled_rows_gives_scores_without_labels_or_metrics(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer)
    output = trainer.predict({"sst": tiny_task_rows()["sst"].remove_columns("sentiment")})["sst"]
    assert output.predictions.shape == (24, 5) and output.label_ids is None and set(output.metrics) == SPEED_METRICS


def test_evaluate_and_predict_report_trainers_speed_metrics(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, per_device_eval_batch_size=10)
    metrics = trainer.evaluate()
    assert metrics["eval_samples_per_second"] > 0 and metrics["eval_runtime"] > 0
    # 24 rows of each of three tasks in batches of 10: 3 batches a task
    assert metrics["eval_steps_per_second"] == pytest.approx(9 / metrics["eval_runtime"], rel=0.01)
    output = trainer.predict({"sst": tiny_task_rows()["sst"]})["sst"]
    assert SPEED_METRICS <= set(output.metrics)


@pytest.mark.parametrize("missing", [-1, None])
def test_predict_on_a_test_split_whose_labels_are_all_missing_treats_its_rows_as_unlabelled(tmp_path, tokenizer, missing):
    rows = tiny_task_rows()["sst"]
    test_split = rows.remove_columns("sentiment").add_column("sentiment", [missing] * len(rows))  # GLUE's test splits: -1
    output = _trainer(tmp_path, tokenizer).predict({"sst": test_split})["sst"]
    assert output.predictions.shape == (24, 5) and output.label_ids is None and set(output.metrics) == SPEED_METRICS


def test_predict_on_rows_with_a_label_that_is_not_the_tasks_names_the_test_dataset_and_row(tmp_path, tokenizer):
    rows = tiny_task_rows()["sst"]
    labels = [0] * (len(rows) - 1) + [-1]
    with pytest.raises(DataError, match="^test_dataset: task 'sst', row 23, column 'sentiment'"):
        _trainer(tmp_path, tokenizer).predict({"sst": rows.remove_columns("sentiment").add_column("sentiment", labels)})


def test_predict_refuses_rows_not_keyed_by_task(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer)
    with pytest.raises(TypeError, match=r"test_dataset=\{task: rows\}"):
        trainer.predict(tiny_task_rows()["sst"])


class _ScoreEpochs(TrainerCallback):
    """Sets the overall score of each evaluation, so that which checkpoint is best is known in advance."""

    def __init__(self, scores):
        self.scores = list(scores)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics["eval_overall"] = self.scores.pop(0)


@pytest.mark.slow
def test_best_model_by_overall_is_loaded_at_end(tmp_path, tokenizer):
    from safetensors.torch import load_file

    trainer = _trainer(tmp_path, tokenizer, num_train_epochs=2, eval_strategy="epoch", save_strategy="epoch",
                       load_best_model_at_end=True, callbacks=[_ScoreEpochs([0.9, 0.1])])  # epoch 1 is best
    trainer.train()
    first, last = sorted((tmp_path / "out").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert trainer.state.best_model_checkpoint == str(first)
    best, final = load_file(first / "model.safetensors"), load_file(last / "model.safetensors")
    loaded = trainer.model.state_dict()
    assert any(not torch.equal(best[name], final[name]) for name in best), "the epochs must end on different weights"
    for name, value in best.items():
        assert torch.equal(loaded[name], value), name
    saved = json.loads((first / "config.json").read_text())
    assert saved["auto_map"]["AutoModel"] == "modeling_minbert.MinBertForMultitask"


def _distinct_pairs(labels):
    """Paraphrase rows whose sentences all differ (no candidate is masked as a duplicate)."""
    import datasets

    from tests.helpers import WORDS

    n = len(labels)
    return datasets.Dataset.from_dict({
        "id": [f"p{i}" for i in range(n)],
        "sentence1": [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(4)) for i in range(n)],
        "sentence2": [" ".join(WORDS[(3 * i + k) % len(WORDS)] for k in (1, 5, 6)) + " film" for i in range(n)],
        "is_duplicate": [float(label) for label in labels],
    })


def mean_embeddings(model, batch, side):
    """One side's sentences of a pair batch as the mean of the encoder's token states over the real tokens."""
    ids, mask = batch[f"input_ids_{side}"], batch[f"attention_mask_{side}"]
    states = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    return (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def test_mnr_term_is_the_cross_entropy_of_each_paraphrase_against_the_batch(tmp_path, tokenizer):
    import torch.nn.functional as F

    model = tiny_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = _trainer(tmp_path, tokenizer, model=model, rows={"para": _distinct_pairs([1, 0, 1, 1, 0, 1, 0, 1])},
                       mnr_weight=0.5, bf16=False)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))["para"]
    total = trainer._task_loss(model, "para", batch)

    a, b = mean_embeddings(model, batch, "a"), mean_embeddings(model, batch, "b")
    pair = batch["labels"] == 1
    # Each paraphrase's first sentence picks its own second sentence among every second sentence of the
    # paraphrases and both sentences of the non-paraphrases.
    candidates = torch.cat([b[pair], a[~pair], b[~pair]])
    scores = 20 * F.cosine_similarity(a[pair][:, None], candidates[None], dim=-1)
    expected = F.cross_entropy(scores, torch.arange(int(pair.sum())))
    head = model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")},
                 task="para", labels=batch["labels"]).loss
    assert trainer._terms["mnr"][-1] == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(total, head + 0.5 * expected)


def test_cosent_term_ranks_each_sts_batch_by_its_labels_beside_the_head_loss(tmp_path, tokenizer):
    import torch.nn.functional as F

    from trainers.trainer import head_input_keys

    model = tiny_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = _trainer(tmp_path, tokenizer, model=model, rows={"sts": tiny_task_rows()["sts"]}, cosent_weight=0.5,
                       bf16=False)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))["sts"]
    total = trainer._task_loss(model, "sts", batch)

    cosines = F.cosine_similarity(mean_embeddings(model, batch, "a"), mean_embeddings(model, batch, "b"))
    labels = batch["labels"]
    # every pair with a higher label than another should have the higher cosine
    expected = torch.log(1 + sum(torch.exp(20 * (cosines[j] - cosines[i]))
                                 for i in range(len(labels)) for j in range(len(labels)) if labels[i] > labels[j]))
    head = model(**{k: v for k, v in batch.items() if k in head_input_keys(model.config.task_spec("sts"))},
                 task="sts", labels=labels).loss
    assert trainer._terms["cosent"][-1] == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(total, head + 0.5 * expected)


def test_ordinal_term_adds_the_squared_emd_of_each_sst_batch_beside_the_head_loss(tmp_path, tokenizer):
    from trainers.trainer import head_input_keys

    model = tiny_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = _trainer(tmp_path, tokenizer, model=model, rows={"sst": tiny_task_rows()["sst"]}, ordinal_weight=0.5,
                       bf16=False)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))["sst"]
    total = trainer._task_loss(model, "sst", batch)

    outputs = model(**{k: v for k, v in batch.items() if k in head_input_keys(model.config.task_spec("sst"))},
                    task="sst", labels=batch["labels"])
    below = torch.arange(5)[None, :4] >= batch["labels"][:, None]  # target CDF: P(class <= k) is 1 from the label on
    expected = (outputs.logits.softmax(-1).cumsum(-1)[:, :4] - below.float()).square().sum(-1).mean()
    assert trainer._terms["ordinal"][-1] == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(total, outputs.loss + 0.5 * expected)


def test_ordinal_loss_on_a_task_without_classes_fails_before_tokenizing(tmp_path, tokenizer, monkeypatch):
    import trainers.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "training_dataset", lambda *a, **k: pytest.fail("tokenized before the check"))
    with pytest.raises(ValueError, match="--ordinal_task para: the ordinal loss needs a classification task .*sst"):
        _trainer(tmp_path, tokenizer, ordinal_weight=1.0, ordinal_task="para")


def test_ordinal_loss_on_a_task_the_data_does_not_train_is_refused(tmp_path, tokenizer):
    rows = {task: tiny_task_rows()[task] for task in ("para", "sts")}
    with pytest.raises(ValueError, match=r"--ordinal_task sst: .*among the training tasks \(none\)"):
        _trainer(tmp_path, tokenizer, rows=rows, ordinal_weight=1.0)


def _head_loss_with_and_without_smoothing(tmp_path, tokenizer, task):
    from trainers.trainer import head_input_keys

    model = tiny_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = _trainer(tmp_path, tokenizer, model=model, rows={task: tiny_task_rows()[task]}, bf16=False,
                       label_smoothing_factor=0.2, pair_swap_probability="")
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))[task]
    outputs = model(**{k: v for k, v in batch.items() if k in head_input_keys(model.config.task_spec(task))},
                    task=task, labels=batch["labels"])
    return trainer._task_loss(model, task, batch), outputs, batch["labels"]


def test_label_smoothing_factor_smooths_a_classification_heads_targets(tmp_path, tokenizer):
    smoothed, outputs, labels = _head_loss_with_and_without_smoothing(tmp_path, tokenizer, "sst")
    targets = torch.nn.functional.one_hot(labels, 5).float() * 0.8 + 0.2 / 5
    expected = -(targets * outputs.logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(smoothed, expected)
    assert not torch.allclose(smoothed, outputs.loss)


def test_label_smoothing_factor_moves_binary_targets_toward_one_half(tmp_path, tokenizer):
    smoothed, outputs, labels = _head_loss_with_and_without_smoothing(tmp_path, tokenizer, "para")
    expected = torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits, labels.float() * 0.8 + 0.1)
    torch.testing.assert_close(smoothed, expected)


def test_label_smoothing_factor_leaves_a_regression_loss_as_it_is(tmp_path, tokenizer):
    smoothed, outputs, _ = _head_loss_with_and_without_smoothing(tmp_path, tokenizer, "sts")
    torch.testing.assert_close(smoothed, outputs.loss)


@pytest.mark.parametrize("flag", ["ordinal_weight", "cosent_weight", "mnr_scale", "sampling_temperature"])
def test_an_infinite_weight_or_scale_is_refused(tmp_path, flag):
    with pytest.raises(ValueError, match=rf"--{flag} must lie in .*inf\), got inf"):
        _args(tmp_path, **{flag: float("inf")})


@pytest.mark.parametrize("factor", [-0.1, 1.0, float("nan")])
def test_a_label_smoothing_factor_outside_zero_to_one_is_refused(tmp_path, factor):
    with pytest.raises(ValueError, match=r"--label_smoothing_factor must lie in \[0, 1\)"):
        _args(tmp_path, label_smoothing_factor=factor)


def test_pcgrad_requires_all_tasks_sampling(tmp_path):
    with pytest.raises(ValueError, match="all_tasks"):
        _args(tmp_path, pcgrad=True)


def test_pcgrad_with_fp16_is_refused_when_the_arguments_are_built(tmp_path):
    # PCGrad's per-task gradients would skip the fp16 loss scaler that the optimizer step then unscales.
    with pytest.raises(ValueError, match="--pcgrad does not work with --fp16") as error:
        _args(tmp_path, task_sampling="all_tasks", pcgrad=True, fp16=True, bf16=False)
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_pcgrad_update_differs_from_the_plain_sum_exactly_when_task_gradients_conflict(tmp_path, tokenizer):
    from trainers.pcgrad import _random_orders, project_conflicting
    from trainers.trainer import head_input_keys

    model = tiny_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = _trainer(tmp_path, tokenizer, model=model, task_sampling="all_tasks", pcgrad=True, bf16=False, smart_weight="0",
                       pair_swap_probability="")  # the plain gradients below read the pairs as given
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which this test steps for
    shared = [p for name, p in model.named_parameters() if name.startswith("bert.")]
    conflicts_seen = []
    for batch in trainer.get_train_dataloader():  # 3 all_tasks steps
        batch = trainer._prepare_inputs(batch)
        plain = {}
        for task, inputs in batch.items():
            head_inputs = {k: v for k, v in inputs.items() if k in head_input_keys(model.config.task_spec(task))}
            loss = model(**head_inputs, task=task, labels=inputs["labels"]).loss
            grads = torch.autograd.grad(loss, shared, allow_unused=True)
            plain[task] = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, shared)])
        generator = torch.Generator().set_state(trainer._pcgrad_generator.get_state())
        expected, _ = project_conflicting(plain, _random_orders(list(plain), generator, distributed=False))
        conflict = any(plain[s].dot(plain[t]) < 0 for s in plain for t in plain if s < t)
        conflicts_seen.append(conflict)

        model.zero_grad()
        trainer.training_step(model, batch)
        update = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in shared])
        plain_sum = sum(plain.values())
        torch.testing.assert_close(update, sum(expected.values()), rtol=1e-4, atol=1e-7)
        differs = not torch.allclose(update, plain_sum, rtol=1e-4, atol=1e-7)
        assert differs == conflict, f"conflict={conflict} but the update {'differs from' if differs else 'equals'} the plain sum"
    assert True in conflicts_seen and False in conflicts_seen, "the steps must include both cases to mean anything"


def test_layerwise_lr_decay_reaches_the_optimizer(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, layerwise_lr_decay=0.5, head_lr_multiplier=4.0)
    optimizer = trainer.create_optimizer()
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert lrs["layer_1/decay"] == pytest.approx(1e-3)
    assert lrs["layer_0/decay"] == pytest.approx(5e-4)
    assert lrs["embeddings/no_decay"] == pytest.approx(2.5e-4)
    assert lrs["heads/decay"] == pytest.approx(4e-3)


@pytest.mark.slow
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


@pytest.mark.parametrize("make, message", [
    (lambda tmp: _args(tmp, task_weights="sst=1,para"), "--task_weights: expected task=value, got 'para'"),
    (lambda tmp: _args(tmp, smart_weight="sst=high"), "--smart_weight: 'high' is not a number"),
    (lambda tmp: task_specs(ModelArguments(head_layers="sts=2=3"), *base_task_specs(ModelArguments())),
     "--head_layers: expected task=value, got 'sts=2=3'"),
    (lambda tmp: task_specs(ModelArguments(head_pooling="sst=cls,nli=mean"), *base_task_specs(ModelArguments())),
     "--head_pooling: unknown task 'nli'"),
])
def test_every_per_task_option_names_the_flag_and_the_bad_item(tmp_path, make, message):
    # One parser reads the training arguments' numbers and minbert train's head options alike.
    with pytest.raises(ValueError, match=re.escape(message)):
        make(tmp_path)


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


@pytest.mark.slow
@pytest.mark.parametrize(
    "technique",
    [
        dict(task_sampling="proportional"),
        dict(task_sampling="proportional", smart_weight="0", smart_proximal_weight=1.0),  # the mean teacher
        dict(task_sampling="all_tasks", pcgrad=True, num_train_epochs=6),  # the generator of the task order
    ],
    ids=["plain", "smart_proximal", "pcgrad"],
)
def test_resume_mid_epoch_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, tokenizer, technique):
    # 14 steps under proportional sampling (SST packed by tokens, the default), 18 under all_tasks
    common = {**dict(num_train_epochs=2, save_strategy="steps", save_steps=1000), **technique}
    full = _trainer(tmp_path / "full", tokenizer, model=tiny_model(seed=1), **common)
    full.train()

    interrupted = _trainer(tmp_path / "cut", tokenizer, model=tiny_model(seed=1), callbacks=[_StopAt(4)], **common)
    interrupted.train()  # stops at step 4, mid-epoch (7, 9 or 3 steps per epoch), after saving checkpoint-4
    resumed = _trainer(tmp_path / "cut", tokenizer, model=tiny_model(seed=1), **common)
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "out" / "checkpoint-4"))

    assert resumed.state.global_step == full.state.global_step == (18 if technique.get("pcgrad") else 14)
    if technique.get("pcgrad"):
        assert sum(e.get("pcgrad_projections", 0) for e in _train_logs(resumed)) > 0, "no order to restore"
    expected = _weights(full.model)
    for name, value in _weights(resumed.model).items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.slow
def test_smart_terms_are_logged_for_tasks_with_a_weight(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, smart_weight="sst=2,para=0,sts=8")
    trainer.train()
    logged = {key for entry in _train_logs(trainer) for key in entry}
    assert {"smart_sst", "smart_sts"} <= logged and "smart_para" not in logged


@pytest.mark.slow
def test_proximal_point_moves_the_mean_teacher_after_each_step(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, smart_weight="0", smart_proximal_weight=1.0, max_steps=2)
    teacher = trainer.smart.teacher
    start = [p.detach().clone() for p in teacher.model.parameters()] if hasattr(teacher, "model") else None
    trainer.train()
    assert start is not None, "MeanTeacher keeps its copy in .model"
    moved = [not torch.equal(a, b) for a, b in zip(start, teacher.model.parameters())]
    assert any(moved)


@pytest.mark.slow
def test_cosine_feature_heads_train_with_smart_and_evaluate(tmp_path, tokenizer):
    from hf_minbert import MinBertConfig

    tasks = MinBertConfig().tasks
    for task in ("para", "sts"):
        tasks[task] = {**tasks[task], "cosine_feature": True}
    trainer = _trainer(tmp_path, tokenizer, model=tiny_model(tasks=tasks), smart_weight="1")
    trainer.train()
    assert {"smart_para", "smart_sts"} <= {key for entry in _train_logs(trainer) for key in entry}
    assert "eval_overall" in trainer.evaluate()


def _linear_output_dtypes(trainer):
    """The dtype of every output of the first feed-forward projection while the trainer trains."""
    seen = []
    layer = trainer.model.bert.encoder.layer[0].intermediate.dense
    layer.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    trainer.train()
    return seen


@pytest.mark.slow
def test_smart_passes_run_in_fp32_while_the_clean_forward_keeps_bf16(tmp_path, tokenizer):
    rows = {"sst": tiny_task_rows()["sst"]}
    with_smart = _linear_output_dtypes(_trainer(tmp_path / "a", tokenizer, rows=rows, bf16=True, max_steps=2, smart_weight="1"))
    without = _linear_output_dtypes(_trainer(tmp_path / "b", tokenizer, rows=rows, bf16=True, max_steps=2, smart_weight="0"))
    assert set(without) == {torch.bfloat16}
    # Per step: the clean forward in bf16; SMART's fp32 clean reference, ascent and final passes in fp32.
    assert with_smart.count(torch.bfloat16) == 2 and with_smart.count(torch.float32) == 6


@pytest.mark.slow
def test_two_task_run_with_default_arguments_picks_its_best_model_by_those_tasks(tmp_path, tokenizer):
    rows = tiny_task_rows()
    rows = {"sst": rows["sst"], "sts": rows["sts"]}
    trainer = _trainer(tmp_path, tokenizer, rows=rows, eval_strategy="epoch", save_strategy="epoch")
    assert trainer.args.metric_for_best_model == "tasks_overall"  # resolved before step 1
    trainer.train()
    (scores,) = [e for e in trainer.state.log_history if "eval_tasks_overall" in e]
    expected = (scores["eval_sst_accuracy"] + (scores["eval_sts_pearson"] + 1) / 2) / 2
    assert scores["eval_tasks_overall"] == pytest.approx(expected)
    assert trainer.state.best_metric == pytest.approx(expected)


def test_best_model_metric_that_will_not_be_reported_is_named_before_training(tmp_path, tokenizer):
    rows = tiny_task_rows()
    rows = {"sst": rows["sst"], "sts": rows["sts"]}
    with pytest.raises(ValueError, match=r"'para_accuracy' will not be reported .* sst_accuracy, sts_pearson") as error:
        _trainer(tmp_path, tokenizer, rows=rows, metric_for_best_model="para_accuracy")
    assert "\n" not in str(error.value)


def test_with_all_three_tasks_the_best_model_metric_stays_overall(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, eval_strategy="epoch", save_strategy="epoch")
    assert trainer.args.metric_for_best_model == "overall"


def test_the_training_curves_plot_every_loss_term_and_nothing_else():
    from trainers.reporting import is_loss_term

    logged = ["loss", "loss_sst", "smart_sst", "mnr", "cosent", "ordinal", "learning_rate", "grad_norm", "epoch"]
    assert [key for key in logged if is_loss_term(key)] == ["loss", "loss_sst", "smart_sst", "mnr", "cosent", "ordinal"]


def test_the_training_curves_plot_the_dev_scores_and_not_the_evaluation_speed():
    from trainers.reporting import is_dev_score

    logged = ["eval_sst_accuracy", "eval_overall", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch"]
    assert [key for key in logged if is_dev_score(key)] == ["eval_sst_accuracy", "eval_overall"]



def test_mnr_on_a_task_whose_labels_are_not_paraphrase_labels_is_refused_when_the_trainer_is_built(tmp_path, tokenizer):
    with pytest.raises(ValueError, match=re.escape("--mnr_task sts: MNR reads binary labels, and sts's head is regression")):
        _trainer(tmp_path, tokenizer, mnr_weight=1.0, mnr_task="sts")
