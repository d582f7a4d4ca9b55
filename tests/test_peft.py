"""PEFT adapters on minBERT: every offered method, per-task adapters routed by task, save/load/merge round
trips, training with MultitaskTrainer, and `minbert train --peft`."""
import json

import pytest
import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers import AutoTokenizer, TrainerCallback, pipeline

from hf_minbert import MinBertEnsembleForMultitask, MinBertForMultitask
from hf_minbert.adapters import (
    METHODS,
    AdapterArguments,
    add_adapters,
    check_adapter_arguments,
    export_model,
    load_adapters,
    merged_model,
    save_adapters,
)
from hf_minbert.cli import main as minbert
from tests.helpers import random_batch, refused_calls, tiny_model, tiny_task_rows, write_task_files
from trainers import MultitaskTrainer, MultitaskTrainingArguments

TASKS = ("sst", "para", "sts")


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def _model(seed=0):
    # No dropout: outputs are compared across copies of the model.
    return tiny_model(seed=seed, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _perturb_adapters(peft_model, seed=0):
    """Random adapter and head weights, so that adapters change outputs (LoRA starts as the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in peft_model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))


def _outputs(model, batch):
    model.eval()
    with torch.no_grad():
        return {task: model(**batch, task=task).logits for task in TASKS}


def _assert_same_outputs(first, second, atol=1e-6):
    for task in TASKS:
        torch.testing.assert_close(first[task], second[task], rtol=0, atol=atol, msg=task)


def _has_peft_layers(model):
    return any(isinstance(module, BaseTunerLayer) for module in model.modules())


# ------------------------------------------------------------------------------------------------------
# One shared adapter, every method
# ------------------------------------------------------------------------------------------------------


def test_lora_adapts_every_encoder_linear_and_trains_only_adapters_and_heads():
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora", lora_r=4))
    adapted = {name.rsplit(".", 1)[-1] for name, m in peft_model.get_base_model().named_modules() if isinstance(m, BaseTunerLayer)}
    assert adapted == {"query", "key", "value", "dense"}
    trainable = [name for name, p in peft_model.get_base_model().named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or ".modules_to_save." in name for name in trainable)
    assert {name.split(".modules_to_save.")[0] for name in trainable if ".modules_to_save." in name} == {
        f"heads.{task}" for task in TASKS
    }


def test_a_frozen_part_of_the_model_gets_no_adapter():
    model = _model()
    model.bert.pooler.requires_grad_(False)  # as the static encoder is frozen
    peft_model = add_adapters(model, AdapterArguments(peft="lora"))
    assert not isinstance(peft_model.get_base_model().bert.pooler.dense, BaseTunerLayer)
    assert isinstance(peft_model.get_base_model().bert.encoder.layer[1].output.dense, BaseTunerLayer)


def test_target_modules_that_match_nothing_are_refused():
    with pytest.raises(ValueError, match="no trainable Linear layer is named like qkv"):
        add_adapters(_model(), AdapterArguments(peft="lora", peft_target_modules="qkv"))


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_changes_outputs_and_round_trips_through_save_load_and_merge(method, tmp_path):
    batch = random_batch(_model().config)
    peft_model = add_adapters(_model(), AdapterArguments(peft=method))
    _perturb_adapters(peft_model)
    adapted = _outputs(peft_model, batch)
    assert not torch.allclose(adapted["sts"], _outputs(_model(), batch)["sts"])

    save_adapters(peft_model, tmp_path)
    reloaded = load_adapters(tmp_path, base_model=_model())
    _assert_same_outputs(_outputs(reloaded, batch), adapted)

    merged = merged_model(peft_model)
    assert type(merged) is MinBertForMultitask and not _has_peft_layers(merged)
    assert set(merged.state_dict()) == set(_model().state_dict())
    _assert_same_outputs(_outputs(merged, batch), adapted, atol=1e-5)


def test_merged_lora_weight_is_the_base_weight_plus_the_scaled_low_rank_update():
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora", lora_r=4, lora_alpha=8))
    _perturb_adapters(peft_model)
    query = peft_model.get_base_model().bert.encoder.layer[0].attention.self.query
    expected = query.base_layer.weight + (8 / 4) * query.lora_B["default"].weight @ query.lora_A["default"].weight
    merged = merged_model(peft_model)
    torch.testing.assert_close(merged.bert.encoder.layer[0].attention.self.query.weight, expected, rtol=0, atol=1e-7)


def test_merging_leaves_the_adapter_model_unchanged():
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora"))
    _perturb_adapters(peft_model)
    batch = random_batch(_model().config)
    before = _outputs(peft_model, batch)
    merged_model(peft_model)
    assert _has_peft_layers(peft_model.get_base_model())
    _assert_same_outputs(_outputs(peft_model, batch), before, atol=0)


def test_stock_peft_loading_works_on_the_saved_adapter(tmp_path):
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora"))
    _perturb_adapters(peft_model)
    save_adapters(peft_model, tmp_path)
    batch = random_batch(_model().config)
    reloaded = PeftModel.from_pretrained(_model(), str(tmp_path))
    _assert_same_outputs(_outputs(reloaded, batch), _outputs(peft_model, batch))


def test_a_peft_config_file_selects_any_lora_like_method(tmp_path):
    (tmp_path / "oft.json").write_text(json.dumps({"peft_type": "OFT", "r": 0, "oft_block_size": 8}))
    peft_model = add_adapters(_model(), AdapterArguments(peft_config=str(tmp_path / "oft.json")))
    assert peft_model.peft_config["default"].peft_type.value == "OFT"
    _perturb_adapters(peft_model)
    batch = random_batch(_model().config)
    _assert_same_outputs(_outputs(merged_model(peft_model), batch), _outputs(peft_model, batch), atol=1e-5)


def test_adalora_is_refused_with_the_reason(tmp_path):
    (tmp_path / "adalora.json").write_text(json.dumps({"peft_type": "ADALORA", "total_step": 10}))
    with pytest.raises(ValueError, match="AdaLoRA needs its rank allocator stepped"):
        add_adapters(_model(), AdapterArguments(peft_config=str(tmp_path / "adalora.json")))


def test_a_flag_the_method_does_not_take_is_refused():
    with pytest.raises(ValueError, match="--lora_r does not apply to --peft ia3"):
        add_adapters(_model(), AdapterArguments(peft="ia3", lora_r=4))


@pytest.mark.parametrize("flag, value", [("lora_r", 16), ("lora_alpha", 3.0), ("lora_dropout", 0.2),
                                         ("peft_target_modules", "key")])
def test_an_adapter_flag_beside_a_peft_config_file_is_refused_as_the_file_decides(tmp_path, flag, value):
    (tmp_path / "lora.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    with pytest.raises(ValueError, match=rf"--{flag} does not apply to --peft_config .*lora\.json: set it in the file"):
        AdapterArguments(peft_config=str(tmp_path / "lora.json"), **{flag: value})


def test_adapter_flags_without_a_method_are_refused():
    with pytest.raises(ValueError, match="--lora_r needs --peft"):
        AdapterArguments(lora_r=8)
    with pytest.raises(ValueError, match="choose one of lora"):
        AdapterArguments(peft="qlora")


def test_a_peft_config_key_the_method_has_no_field_for_is_refused(tmp_path):
    (tmp_path / "typo.json").write_text(json.dumps({"peft_type": "LORA", "rr": 4}))
    with pytest.raises(ValueError, match=r"typo\.json: LoraConfig has no field rr$"):
        check_adapter_arguments(AdapterArguments(peft_config=str(tmp_path / "typo.json")))


def test_a_peft_config_number_given_as_text_is_refused(tmp_path):
    (tmp_path / "text.json").write_text(json.dumps({"peft_type": "LORA", "r": "eight"}))
    with pytest.raises(ValueError, match=r"text\.json: r must be a number, got 'eight'$"):
        check_adapter_arguments(AdapterArguments(peft_config=str(tmp_path / "text.json")))


@pytest.mark.parametrize("flags, message", [({"lora_r": 0}, "--lora_r must be >= 1"),
                                            ({"lora_dropout": 2.0}, r"--lora_dropout must lie in \[0, 1\)"),
                                            ({"lora_alpha": 0.0}, "--lora_alpha must be > 0")])
def test_an_adapter_size_out_of_range_is_refused_when_the_arguments_are_built(flags, message):
    with pytest.raises(ValueError, match=message):
        AdapterArguments(peft="lora", **flags)


def test_saved_adapters_name_a_local_base_model_by_its_absolute_path(tmp_path, monkeypatch):
    _model().save_pretrained(tmp_path / "base")
    monkeypatch.chdir(tmp_path)
    model = MinBertForMultitask.from_pretrained("base")  # as `--model_name_or_path base` loads it
    save_adapters(add_adapters(model, AdapterArguments(peft="lora")), tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == str((tmp_path / "base").resolve())


def test_per_task_adapters_on_a_plain_encoder_checkpoint_export_as_an_ensemble(tmp_path):
    from hf_minbert import MinBertConfig, MinBertModel

    MinBertModel(MinBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=64)).save_pretrained(tmp_path)
    model = MinBertForMultitask.from_pretrained(tmp_path)  # config.architectures: the checkpoint's MinBertModel
    exported = export_model(add_adapters(model, AdapterArguments(peft="lora", peft_per_task=True)))
    assert isinstance(exported, MinBertEnsembleForMultitask)


# ------------------------------------------------------------------------------------------------------
# One adapter per task on a shared frozen encoder
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def per_task():
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora", lora_r=4, peft_per_task=True))
    _perturb_adapters(peft_model)
    return peft_model


def test_per_task_adapters_are_named_like_the_tasks_and_all_trainable(per_task):
    assert set(per_task.peft_config) == set(TASKS)
    trainable = {name for name, p in per_task.named_parameters() if p.requires_grad}
    for task in TASKS:
        assert any(f"lora_A.{task}." in name for name in trainable)
        assert any(f"heads.{task}.modules_to_save.{task}." in name for name in trainable)


def test_each_task_runs_through_its_own_adapter_only(per_task):
    batch = random_batch(per_task.get_base_model().config)
    before = _outputs(per_task, batch)
    with torch.no_grad():
        for name, parameter in per_task.named_parameters():
            if "lora_B.para." in name:
                parameter.add_(1.0)
    after = _outputs(per_task, batch)
    assert not torch.allclose(after["para"], before["para"])
    torch.testing.assert_close(after["sst"], before["sst"], rtol=0, atol=0)
    torch.testing.assert_close(after["sts"], before["sts"], rtol=0, atol=0)


def test_calls_on_the_unwrapped_model_are_routed_too(per_task):
    # MultitaskTrainer's evaluation and SMART call the model inside the PeftModel.
    batch = random_batch(per_task.get_base_model().config)
    _assert_same_outputs(_outputs(per_task.get_base_model(), batch), _outputs(per_task, batch), atol=0)
    assert not torch.allclose(_outputs(per_task.get_base_model(), batch)["sts"], _outputs(_model(), batch)["sts"])


def test_per_task_adapters_save_one_folder_per_task_and_load_back(per_task, tmp_path):
    save_adapters(per_task, tmp_path)
    assert all((tmp_path / task / "adapter_config.json").is_file() for task in TASKS)
    batch = random_batch(per_task.get_base_model().config)
    reloaded = load_adapters(tmp_path, base_model=_model())
    _assert_same_outputs(_outputs(reloaded, batch), _outputs(per_task, batch))


@pytest.mark.slow
def test_per_task_adapters_export_as_an_ensemble_of_merged_encoders_with_the_same_predictions(per_task, tmp_path):
    exported = export_model(per_task)
    assert isinstance(exported, MinBertEnsembleForMultitask) and len(exported.members) == 3
    assert exported.config.task_weights["para"] == [0.0, 1.0, 0.0]
    batch = random_batch(per_task.get_base_model().config)
    ensemble, routed = _outputs(exported, batch), _outputs(per_task, batch)
    # The ensemble's classification logits are log-probabilities: equal up to a per-row constant.
    ensemble["sst"], routed["sst"] = ensemble["sst"].softmax(-1), routed["sst"].softmax(-1)
    _assert_same_outputs(ensemble, routed, atol=1e-5)


def test_a_pipeline_answers_through_a_peft_model_as_through_its_merged_model(tokenizer):
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora"))
    _perturb_adapters(peft_model)
    pairs = [("how do i learn python", "what is the best way to learn python"), ("why", "why not")]
    adapted = pipeline("paraphrase-detection", model=peft_model.eval(), tokenizer=tokenizer)(pairs)
    merged = pipeline("paraphrase-detection", model=merged_model(peft_model).eval(), tokenizer=tokenizer)(pairs)
    assert [answer["label"] for answer in adapted] == [answer["label"] for answer in merged]
    assert [answer["score"] for answer in adapted] == pytest.approx([answer["score"] for answer in merged], abs=1e-5)


def test_a_pipeline_answers_each_task_through_its_own_adapter_of_a_per_task_peft_model(tokenizer):
    per_task = add_adapters(_model(), AdapterArguments(peft="lora", peft_per_task=True))
    _perturb_adapters(per_task)
    per_task.eval()
    exported = export_model(per_task).eval()
    batch = random_batch(per_task.get_base_model().config)
    with torch.no_grad():
        per_task(**batch, task="para")  # the last forward leaves para's adapter active
    pair = ("a gorgeous , witty film", "a fine and clever movie")
    routed = pipeline("minbert-multitask", model=per_task, tokenizer=tokenizer)(pair)
    expected = pipeline("minbert-multitask", model=exported, tokenizer=tokenizer)(pair)
    for task in TASKS:  # sst answers for each sentence of the pair
        answers = [(a.get("label"), a["score"]) for a in (routed[task] if task == "sst" else [routed[task]])]
        wanted = [(a.get("label"), a["score"]) for a in (expected[task] if task == "sst" else [expected[task]])]
        assert [label for label, _ in answers] == [label for label, _ in wanted], task
        assert [score for _, score in answers] == pytest.approx([score for _, score in wanted], abs=1e-5), task


def test_a_deep_copy_of_a_per_task_peft_model_predicts_each_task_through_its_own_adapter():
    import copy

    per_task = add_adapters(_model(), AdapterArguments(peft="lora", peft_per_task=True))
    _perturb_adapters(per_task)
    per_task.eval()
    batch = random_batch(per_task.get_base_model().config)
    sentences = {key: batch[key] for key in ("input_ids", "attention_mask")}
    copied = copy.deepcopy(per_task)
    with torch.no_grad():
        copied(**batch, task="para")  # the copy's last forward leaves para's adapter active
        expected = per_task.get_base_model().predict(["sst"], sentences=sentences)["sst"].logits
        answered = copied.get_base_model().predict(["sst"], sentences=sentences)["sst"].logits
    torch.testing.assert_close(answered, expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------------
# Training with MultitaskTrainer
# ------------------------------------------------------------------------------------------------------


def _train(tmp_path, tokenizer, peft_model, callbacks=None, resume_from_checkpoint=None, **overrides):
    settings = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=3, logging_steps=1,
                    eval_strategy="no", save_strategy="no", report_to="none", use_cpu=True, bf16=False,
                    learning_rate=1e-2, seed=0, max_seq_length=32, disable_tqdm=True)
    settings.update(overrides)
    trainer = MultitaskTrainer(model=peft_model, args=MultitaskTrainingArguments(**settings),
                               train_dataset=tiny_task_rows(), processing_class=tokenizer, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    return trainer


def _snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.slow
def test_multitask_trainer_trains_the_adapters_and_heads_and_leaves_the_encoder_frozen(tmp_path, tokenizer):
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora", lora_r=4))
    before = _snapshot(peft_model)
    _train(tmp_path, tokenizer, peft_model)
    changed = {name for name, p in peft_model.named_parameters() if not torch.equal(p, before[name])}
    assert any("lora_B" in name for name in changed) and any(".modules_to_save." in name for name in changed)
    assert all("lora_" in name or ".modules_to_save." in name for name in changed)


@pytest.mark.slow
def test_a_peft_model_saved_by_the_trainer_loads_back_with_its_heads(tmp_path, tokenizer):
    _model().save_pretrained(tmp_path / "base")
    peft_model = add_adapters(MinBertForMultitask.from_pretrained(tmp_path / "base"), AdapterArguments(peft="lora", lora_r=4))
    trainer = _train(tmp_path, tokenizer, peft_model)
    trainer.save_model(str(tmp_path / "saved"))
    batch = random_batch(_model().config)
    _assert_same_outputs(_outputs(load_adapters(tmp_path / "saved"), batch), _outputs(peft_model, batch))


def test_a_peft_model_whose_heads_peft_left_frozen_is_refused_before_training(tmp_path, tokenizer):
    # peft's SEQ_CLS task type trains `classifier` and `score` in full: no minBERT head is named so.
    peft_model = get_peft_model(_model(), LoraConfig(task_type=TaskType.SEQ_CLS, target_modules=["query", "value"]))
    with pytest.raises(ValueError, match="task 'sst': its head is frozen in this PeftModel.*modules_to_save"):
        _train(tmp_path, tokenizer, peft_model)


@pytest.mark.slow
def test_per_task_training_with_every_task_in_one_step_trains_every_tasks_adapter(tmp_path, tokenizer):
    # All three tasks' forwards precede one backward: switching adapters must not freeze the earlier ones.
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora", lora_r=4, peft_per_task=True))
    before = _snapshot(peft_model)
    _train(tmp_path, tokenizer, peft_model, task_sampling="all_tasks", max_steps=1)
    for task in TASKS:
        lora_b = [name for name in before if f"lora_B.{task}." in name]
        assert any(not torch.equal(peft_model.get_parameter(name), before[name]) for name in lora_b), task


class _StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = control.should_training_stop = True


@pytest.mark.slow
@pytest.mark.parametrize("per_task", [False, True], ids=["shared", "per_task"])
def test_adapter_training_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, tokenizer, per_task):
    # Checkpoints of a PeftModel are adapter folders (one per task adapter); Trainer's own PEFT support restores
    # them, and every task's adapter is in the optimizer that resumes.
    def run(folder, **kwargs):
        peft_model = add_adapters(_model(seed=1), AdapterArguments(peft="lora", lora_r=4, peft_per_task=per_task))
        _train(folder, tokenizer, peft_model, max_steps=6, save_strategy="steps", save_steps=1000, **kwargs)
        return {name: p.detach().clone() for name, p in peft_model.named_parameters() if p.requires_grad}

    full = run(tmp_path / "full")
    run(tmp_path / "cut", callbacks=[_StopAt(2)])
    resumed = run(tmp_path / "cut", resume_from_checkpoint=str(tmp_path / "cut" / "out" / "checkpoint-2"))
    assert resumed.keys() == full.keys()
    for name, value in full.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=1e-6, msg=name)


def test_only_the_main_process_writes_a_peft_models_save(tmp_path, tokenizer, monkeypatch):
    # Under DDP Trainer's _save returns at once on the other ranks, which must not write into a folder
    # the main process may not have made yet.
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora", lora_r=4))
    trainer = MultitaskTrainer(model=peft_model, processing_class=tokenizer, train_dataset=tiny_task_rows(),
                               args=MultitaskTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True,
                                                               eval_strategy="no", max_seq_length=32))
    monkeypatch.setattr(MultitaskTrainingArguments, "should_save", property(lambda self: False))
    trainer._save(str(tmp_path / "checkpoint-1"))
    assert not (tmp_path / "checkpoint-1").exists()


class _SavedWeights(TrainerCallback):
    def __init__(self):
        self.by_step = {}

    def on_save(self, args, state, control, model=None, **kwargs):
        self.by_step[state.global_step] = _snapshot(model)


@pytest.mark.slow
def test_per_task_adapters_end_as_the_best_checkpoint_where_load_best_model_at_end_asks(tmp_path, tokenizer):
    saved = _SavedWeights()
    peft_model = add_adapters(_model(), AdapterArguments(peft="lora", lora_r=4, peft_per_task=True))
    trainer = MultitaskTrainer(
        model=peft_model, processing_class=tokenizer, train_dataset=tiny_task_rows(16, seed=3),
        eval_dataset=tiny_task_rows(10, seed=5), callbacks=[saved],
        args=MultitaskTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, num_train_epochs=4,
                                        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
                                        greater_is_better=False, report_to="none", use_cpu=True, bf16=False,
                                        learning_rate=2e-2, seed=0, max_seq_length=32, disable_tqdm=True))
    trainer.train()
    best_step = int(trainer.state.best_model_checkpoint.rsplit("-", 1)[1])
    assert best_step != max(saved.by_step)  # else the last model would pass for the best
    final = _snapshot(peft_model)
    for name, value in saved.by_step[best_step].items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0, msg=name)


class _FirstGradients(TrainerCallback):
    def __init__(self):
        self.gradients = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.gradients is None:
            self.gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.slow
def test_pcgrad_on_per_task_adapters_gets_the_same_gradients_with_gradient_checkpointing(tmp_path, tokenizer):
    # PCGrad runs every task's forward before the first backward; checkpointing recomputes each task's layers
    # in its backward, which must see that task's adapter, not the last forward's.
    gradients = []
    for checkpointing in (False, True):
        peft_model = add_adapters(_model(), AdapterArguments(peft="lora", lora_r=4, lora_dropout=0.0, peft_per_task=True))
        _perturb_adapters(peft_model)  # LoRA's B starts at zero, which would leave A no gradient to compare
        first = _FirstGradients()
        _train(tmp_path / str(checkpointing), tokenizer, peft_model, callbacks=[first], max_steps=1, pcgrad=True,
               task_sampling="all_tasks", gradient_checkpointing=checkpointing,
               activation_checkpointing_kwargs={"use_reentrant": False})
        gradients.append(first.gradients)
    plain, checkpointed = gradients
    assert plain.keys() == checkpointed.keys() and any("lora_A.para." in name for name in plain)
    for name, value in plain.items():
        torch.testing.assert_close(checkpointed[name], value, rtol=0, atol=1e-7, msg=name)


# ------------------------------------------------------------------------------------------------------
# minbert train --peft
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_and_data(tmp_path_factory, tokenizer):
    base = tmp_path_factory.mktemp("base")
    _model().save_pretrained(base)
    tokenizer.save_pretrained(base)
    data = tmp_path_factory.mktemp("data")
    write_task_files(data, tiny_task_rows(n=16, seed=1), split="train")
    write_task_files(data, tiny_task_rows(n=8, seed=2), split="dev")
    return base, data


def _train_command(base, data, output, *flags):
    return minbert(["train", "--model_name_or_path", str(base), "--data_dir", str(data), "--output_dir", str(output),
                    "--max_steps", "2", "--per_device_train_batch_size", "4", "--eval_strategy", "no",
                    "--save_strategy", "no", "--bf16", "false", "--use_cpu", "true", "--disable_tqdm", "true",
                    "--max_seq_length", "32", *flags])


@pytest.mark.slow
@pytest.mark.parametrize("per_task", [False, True], ids=["shared", "per_task"])
def test_train_with_peft_writes_a_model_that_evaluate_scores_and_the_adapters(base_and_data, tmp_path, per_task):
    base, data = base_and_data
    output = tmp_path / "run"
    assert _train_command(base, data, output, "--peft", "lora", "--lora_r", "4", *(["--peft_per_task"] if per_task else [])) == 0
    config = json.loads((output / "config.json").read_text())
    assert config["architectures"] == ["MinBertEnsembleForMultitask" if per_task else "MinBertForMultitask"]
    card = (output / "README.md").read_text()  # per-task adapters export as an ensemble, which has a card too
    assert ("## Members" in card) == per_task and "## Training" in card
    assert ("one `lora` adapter and head per task" if per_task else "`lora` adapters and the heads") in card
    assert minbert(["evaluate", "--model", str(output), "--data_dir", str(data), "--output_dir", str(tmp_path / "eval"),
                    "--no_progress"]) == 0
    trained = json.loads((output / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["sst"] == pytest.approx(trained["sst"]) and evaluated["sts"] == pytest.approx(trained["sts"], abs=1e-5)
    # The adapters load back onto the base checkpoint that adapter_config.json names.
    adapters = load_adapters(output / "adapter")
    assert set(adapters.peft_config) == (set(TASKS) if per_task else {"default"})


@pytest.mark.slow
@pytest.mark.parametrize("flags, difference", [
    (["--peft", "lora"], "adapters para,sst,sts against default"),
    (["--peft", "lora", "--peft_per_task", "--lora_r", "4"], "r 8 against 4"),
])
def test_train_refuses_to_resume_adapters_these_flags_do_not_build_before_reading_data(base_and_data, tmp_path, capsys,
                                                                                        flags, difference):
    base, data = base_and_data
    assert _train_command(base, data, tmp_path / "first", "--peft", "lora", "--peft_per_task", "--save_strategy",
                          "steps", "--save_steps", "1") == 0
    checkpoint = tmp_path / "first" / "checkpoint-2"
    assert _train_command(base, tmp_path / "no-data-here", tmp_path / "second", *flags,
                          "--resume_from_checkpoint", str(checkpoint)) == 2
    assert f"--resume_from_checkpoint {checkpoint}: its adapters differ from the ones these flags build ({difference})" \
        in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--peft_config", "nowhere.json"], "--peft_config nowhere.json: "),
    (["--peft", "lora", "--freeze_encoder", "true"], "--freeze_encoder with adapters would freeze the adapters too"),
    (["--peft", "lora", "--push_to_hub", "true"], "--push_to_hub with adapters would push the adapter files only"),
    (["--peft", "lora", "--peft_target_modules", "nope"], "no trainable Linear layer is named like nope"),
])
def test_train_refuses_an_adapter_flag_mistake_before_reading_data(base_and_data, tmp_path, capsys, monkeypatch,
                                                                   flags, message):
    import hf_minbert.commands.train as train

    calls = refused_calls(monkeypatch, train, "load_task_data")
    base, data = base_and_data
    assert _train_command(base, data, tmp_path / "run", *flags) == 2
    assert message in capsys.readouterr().err and calls == []


def test_train_refuses_a_peft_config_whose_target_modules_match_no_layer_before_reading_data(
        base_and_data, tmp_path, capsys, monkeypatch):
    import hf_minbert.commands.train as train

    calls = refused_calls(monkeypatch, train, "load_task_data")
    config = tmp_path / "lora.json"
    config.write_text(json.dumps({"peft_type": "LORA", "r": 4, "target_modules": ["nope"]}))
    base, data = base_and_data
    assert _train_command(base, data, tmp_path / "run", "--peft_config", str(config)) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"minbert train: --peft_config {config}: its target_modules {{'nope'}} match no trainable Linear "
                     "layer of the model (e.g. query, key, value, dense)") and calls == []


def test_a_peft_config_targeting_all_linear_layers_passes_the_check(tmp_path):
    from hf_minbert.adapters import check_config_file_targets

    config = tmp_path / "lora.json"
    config.write_text(json.dumps({"peft_type": "LORA", "r": 4, "target_modules": "all-linear"}))
    check_config_file_targets(_model(), AdapterArguments(peft_config=str(config)))


@pytest.mark.slow
def test_train_per_task_adapters_with_epoch_evaluation_ends_with_the_best_checkpoint(base_and_data, tmp_path):
    # Evaluating and saving each epoch turns load_best_model_at_end on by default, for per-task adapters too.
    base, data = base_and_data
    output = tmp_path / "run"
    assert _train_command(base, data, output, "--peft", "lora", "--peft_per_task", "--eval_strategy", "epoch",
                          "--save_strategy", "epoch", "--max_steps", "-1", "--num_train_epochs", "3",
                          "--metric_for_best_model", "sst_accuracy", "--learning_rate", "5e-2") == 0
    assert json.loads((output / "config.json").read_text())["architectures"] == ["MinBertEnsembleForMultitask"]
    last = max(output.glob("checkpoint-*"), key=lambda folder: int(folder.name.split("-")[1]))
    state = json.loads((last / "trainer_state.json").read_text())
    last_score = [entry["eval_sst_accuracy"] for entry in state["log_history"] if "eval_sst_accuracy" in entry][-1]
    assert state["best_metric"] != last_score  # else the last model would pass for the best
    assert json.loads((output / "metrics.json").read_text())["sst"]["accuracy"] == pytest.approx(state["best_metric"], abs=1e-6)
