"""Every architecture the seeds tried, behind one model class: the plain multitask model (k = 0), CerBERTus
(the top k layers per task), Triple-BERT (one encoder per task) and the static encoder; their heads, sharing,
loading from a checkpoint with one encoder, saving, remote code, training, and the `minbert train` flags."""
import logging

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

from hf_minbert import MinBertConfig, MinBertForMaskedLM, MinBertForMultitask, MinBertModel
from hf_minbert.commands.head_options import task_specs
from hf_minbert.commands.train import build_model
from hf_minbert.commands.train_arguments import parse_arguments
from hf_minbert.modeling_minbert import MinBertBiEncoderHead, MinBertStaticEncoder
from hf_minbert.optimization import build_parameter_groups
from tests.helpers import random_batch, tiny_model, tiny_task_rows
from trainers import MultitaskTrainer, MultitaskTrainingArguments
from trainers.pcgrad import pcgrad_backward

# sst on single sentences, para cross-encoded with the cosine feature, sts as a bi-encoder: every head path.
TASKS = {
    "sst": {"kind": "classification", "labels": ["a", "b", "c", "d", "e"]},
    "para": {"kind": "binary", "pair_encoding": "cross", "cosine_feature": True},
    "sts": {"kind": "regression", "label_range": [0.0, 5.0], "pair_encoding": "bi"},
}
ARCHITECTURES = {
    "multitask": {},
    "cerbertus": {"task_specific_layers": 1},
    "cerbertus_all_layers": {"task_specific_layers": 2},
    "triple": {"task_specific_layers": 2, "task_specific_embeddings": True},
    "static": {"static_encoder": True},
    "cerbertus_static": {"task_specific_layers": 1, "static_encoder": True},
    "triple_static": {"task_specific_layers": 2, "task_specific_embeddings": True, "static_encoder": True},
}
LABELS = {"sst": torch.tensor([0, 4, 2]), "para": torch.tensor([1.0, 0.0, 1.0]), "sts": torch.tensor([0.5, 4.0, 2.5])}


def _model(seed=0, tasks=TASKS, **architecture):
    torch.manual_seed(seed)
    config = MinBertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=64, tasks=tasks, **architecture)
    return MinBertForMultitask(config).eval()


def _inputs(config):
    """Joint (cross-encoded) inputs plus the two sentences alone, for every head kind."""
    batch = random_batch(config)
    sides = {"input_ids_a": batch["input_ids"][:, :5], "attention_mask_a": batch["attention_mask"][:, :5],
             "input_ids_b": batch["input_ids"][:, 3:], "attention_mask_b": batch["attention_mask"][:, 3:]}
    return {**batch, **sides}


def _logits(model, inputs=None):
    inputs = inputs or _inputs(model.config)
    with torch.no_grad():
        return {task: model(**inputs, task=task).logits for task in model.config.tasks}


def _layers_run(model, task, inputs):
    """The MinBertLayer modules a forward of `task` runs, in order."""
    from hf_minbert.modeling_minbert_layers import MinBertLayer

    ran = []
    hooks = [m.register_forward_hook(lambda module, *_: ran.append(module)) for m in model.modules() if isinstance(m, MinBertLayer)]
    try:
        with torch.no_grad():
            model(**inputs, task=task)
    finally:
        for hook in hooks:
            hook.remove()
    return list(dict.fromkeys(ran))


# --- structure and sharing -------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_head_has_its_logit_shape_in_every_architecture(architecture):
    logits = _logits(_model(**ARCHITECTURES[architecture]))
    assert {task: tuple(value.shape) for task, value in logits.items()} == {"sst": (3, 5), "para": (3,), "sts": (3,)}


def test_task_specific_layers_zero_is_exactly_the_plain_multitask_model():
    plain, k0 = _model(), _model(task_specific_layers=0)
    assert plain.state_dict().keys() == k0.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), k0.state_dict().values()))


def test_cerbertus_shares_the_lower_layers_and_gives_each_task_the_top_ones():
    names = {name for name, _ in _model(task_specific_layers=1).named_parameters()}
    assert any(n.startswith("bert.encoder.layer.0.") for n in names)
    assert not any(n.startswith(("bert.encoder.layer.1.", "bert.pooler.")) for n in names)
    for task in TASKS:  # the copies carry the names of the layers they copy
        assert f"task_encoders.{task}.encoder.layer.1.attention.self.query.weight" in names
        assert f"task_encoders.{task}.pooler.dense.weight" in names
        assert not any(n.startswith(f"task_encoders.{task}.encoder.layer.0.") for n in names)


def test_shared_layers_are_the_same_tensors_for_every_task():
    model = _model(task_specific_layers=1)
    inputs = _inputs(model.config)
    runs = {task: _layers_run(model, task, inputs) for task in TASKS}
    storage = {task: [layer.attention.self.query.weight.data_ptr() for layer in layers] for task, layers in runs.items()}
    assert all(len(pointers) == 2 for pointers in storage.values())
    assert len({pointers[0] for pointers in storage.values()}) == 1, "layer 0 is one tensor used by every task"
    assert len({pointers[1] for pointers in storage.values()}) == 3, "layer 1 is each task's own"


def test_triple_bert_gives_each_task_a_whole_encoder_and_shares_nothing():
    model = _model(**ARCHITECTURES["triple"])
    assert not hasattr(model, "bert")
    assert all(isinstance(model.task_encoders[task], MinBertModel) for task in TASKS)
    owners = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        if name.startswith("task_encoders."):
            owners.setdefault(param.data_ptr(), set()).add(name.split(".")[1])
    assert all(len(tasks) == 1 for tasks in owners.values())
    tables = {model.task_input_embeddings(task).weight.data_ptr() for task in TASKS}
    assert len(tables) == 3


@pytest.mark.parametrize("architecture", ["triple_static", "cerbertus_static"])
def test_inputs_embeds_of_the_tasks_word_table_equal_input_ids(architecture):
    # SMART perturbs inputs_embeds: they must mean the task's own word vectors, for both encoders.
    model = _model(**ARCHITECTURES[architecture])
    inputs = _inputs(model.config)
    expected = _logits(model, inputs)
    with torch.no_grad():
        for task in TASKS:
            table = model.task_input_embeddings(task)
            embedded = {key.replace("input_ids", "inputs_embeds"): table(value) if key.startswith("input_ids") else value
                        for key, value in inputs.items()}
            torch.testing.assert_close(model(**embedded, task=task).logits, expected[task], rtol=0, atol=1e-5)


def test_bi_encoder_and_cosine_feature_use_the_tasks_own_layers():
    model = _model(task_specific_layers=1)
    inputs = _inputs(model.config)
    before = _logits(model, inputs)
    with torch.no_grad():
        model.task_encoders["sts"].encoder.layer["1"].output.dense.weight.mul_(3)
        model.task_encoders["para"].encoder.layer["1"].output.dense.weight.mul_(3)
    after = _logits(model, inputs)
    assert not torch.allclose(before["sts"], after["sts"]) and not torch.allclose(before["para"], after["para"])
    torch.testing.assert_close(before["sst"], after["sst"], rtol=0, atol=0)
    with torch.no_grad():
        para_u = model(**inputs, task="para").embeddings_a
        sst_u = model.embed(inputs["input_ids_a"], inputs["attention_mask_a"], task="sst")
        torch.testing.assert_close(para_u, model.embed(inputs["input_ids_a"], inputs["attention_mask_a"], task="para"))
    assert not torch.allclose(para_u, sst_u)


def test_encode_for_tasks_runs_the_shared_layers_once():
    model = _model(task_specific_layers=1)
    inputs = random_batch(model.config)
    shared_layer = model.bert.encoder.layer[0]
    calls = []
    hook = shared_layer.register_forward_hook(lambda *_: calls.append(1))
    try:
        outputs = model.encode_for_tasks(list(TASKS), **inputs)
    finally:
        hook.remove()
    assert len(calls) == 1 and outputs.keys() == set(TASKS)


def test_static_encoder_stays_in_eval_mode_without_a_word_table_of_its_own():
    model = _model(static_encoder=True).train()
    assert isinstance(model.static_bert, MinBertStaticEncoder)
    assert not model.static_bert.training and model.bert.training
    assert model.static_bert.get_input_embeddings() is None


def test_static_encoder_gets_no_gradient_and_no_optimizer_group():
    model = _model(static_encoder=True).train()
    assert not any(p.requires_grad for p in model.static_bert.parameters())
    inputs = _inputs(model.config)
    sum(model(**inputs, task=t, labels=LABELS[t]).loss for t in TASKS).backward()
    assert all(p.grad is None for p in model.static_bert.parameters())
    grouped = {name for group in build_parameter_groups(model, lr=1e-3) for name in group["param_names"]}
    assert grouped and not any(name.startswith("static_bert.") for name in grouped)


def test_static_encoder_output_is_concatenated_into_single_and_cross_heads_only():
    model = _model(static_encoder=True)
    hidden = model.config.hidden_size
    assert model.heads["sst"].layers[-1].in_features == 2 * hidden
    assert model.heads["para"].layers[-1].in_features == 2 * hidden + 1  # + the cosine feature
    assert isinstance(model.heads["sts"], MinBertBiEncoderHead)
    inputs = _inputs(model.config)
    before = _logits(model, inputs)
    with torch.no_grad():
        model.static_bert.pooler.dense.bias.add_(1.0)
    after = _logits(model, inputs)
    assert not torch.allclose(before["sst"], after["sst"])
    torch.testing.assert_close(before["sts"], after["sts"], rtol=0, atol=0)


@pytest.mark.parametrize(
    "architecture, message",
    [
        ({"task_specific_layers": 3}, r"task_specific_layers must lie in \[0, num_hidden_layers=2\]"),
        ({"task_specific_layers": 1, "task_specific_embeddings": True}, "Triple-BERT"),
    ],
)
def test_impossible_architectures_are_refused_by_name(architecture, message):
    with pytest.raises(ValueError, match=message):
        _model(**architecture)


def test_a_static_encoder_that_no_head_reads_is_refused():
    with pytest.raises(ValueError, match="no head reads it"):
        _model(tasks={"sts": TASKS["sts"]}, static_encoder=True)


# --- loading from a checkpoint with one shared encoder ----------------------------------------------------


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain")
    _model(seed=1).save_pretrained(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("architecture", [a for a in ARCHITECTURES if a != "multitask"])
def test_a_plain_checkpoint_loads_into_every_architecture_computing_what_it_computed(plain_dir, architecture, caplog):
    plain = MinBertForMultitask.from_pretrained(plain_dir).eval()
    with caplog.at_level(logging.WARNING):
        converted = MinBertForMultitask.from_pretrained(plain_dir, **ARCHITECTURES[architecture]).eval()
    assert converted.config.architecture == architecture.split("_")[0].replace("static", "multitask")
    inputs = _inputs(plain.config)
    expected, got = _logits(plain, inputs), _logits(converted, inputs)
    for task in TASKS:
        torch.testing.assert_close(got[task], expected[task], rtol=0, atol=1e-5)
    assert "checkpoint's" in caplog.text  # the copy report


def test_each_tasks_copy_is_its_own_tensor(plain_dir):
    model = MinBertForMultitask.from_pretrained(plain_dir, task_specific_layers=1)
    weights = [model.task_encoders[task].encoder.layer["1"].output.dense.weight for task in TASKS]
    assert len({w.data_ptr() for w in weights}) == 3
    with torch.no_grad():
        weights[0].add_(1.0)
    assert not torch.equal(weights[0], weights[1])


def test_the_copy_report_names_the_copied_layers(plain_dir, caplog):
    with caplog.at_level(logging.WARNING):
        MinBertForMultitask.from_pretrained(plain_dir, task_specific_layers=1, static_encoder=True)
    assert "each task's layer 1 and pooler (para, sst, sts) start as copies" in caplog.text
    assert "static_bert.* <- bert.*" in caplog.text


@pytest.mark.slow
def test_the_embedded_minilm_loads_as_cerbertus_with_its_top_layers_in_every_task(minilm_path):
    model = MinBertForMultitask.from_pretrained(minilm_path, task_specific_layers=2)
    reference = MinBertModel.from_pretrained(minilm_path)
    for task in model.config.tasks:
        for index in ("4", "5"):
            ours = model.task_encoders[task].encoder.layer[index].intermediate.dense.weight
            assert torch.equal(ours, reference.encoder.layer[int(index)].intermediate.dense.weight)
        assert torch.equal(model.task_encoders[task].pooler.dense.weight, reference.pooler.dense.weight)
    assert len(model.bert.encoder.layer) == 4


def test_a_checkpoint_with_task_layers_loads_only_as_saved(tmp_path):
    _model(task_specific_layers=1).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="loads only as saved"):
        MinBertForMultitask.from_pretrained(tmp_path, task_specific_layers=2)


def test_a_new_task_cannot_get_layers_from_a_cerbertus_checkpoint(tmp_path):
    _model(task_specific_layers=1).save_pretrained(tmp_path)
    tasks = {**TASKS, "extra": {"kind": "binary", "pair_encoding": "cross"}}
    with pytest.raises(ValueError, match=r"no task-specific encoder layers for task\(s\) \['extra'\]"):
        MinBertForMultitask.from_pretrained(tmp_path, tasks=tasks)


@pytest.mark.parametrize("architecture", ["cerbertus", "triple"])
@pytest.mark.parametrize("one_encoder_class", [MinBertModel, MinBertForMaskedLM, AutoModelForMaskedLM])
def test_one_encoder_is_refused_a_checkpoint_whose_layers_are_each_tasks_own(tmp_path, architecture, one_encoder_class):
    # It would load the shared layers alone and start the tasks' own at random (only the load report told).
    _model(**ARCHITECTURES[architecture]).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=f"a {architecture} model, .* has no one encoder .*encode_for_task"):
        one_encoder_class.from_pretrained(tmp_path)


def test_the_bare_encoder_loads_the_whole_encoder_of_a_plain_multitask_checkpoint(tmp_path):
    model = _model().eval()
    model.save_pretrained(tmp_path)
    input_ids, attention_mask = torch.tensor([[2, 7, 9, 3, 0]]), torch.tensor([[1, 1, 1, 1, 0]])
    expected = model.encode_for_task("sst", input_ids, attention_mask).last_hidden_state
    encoder = MinBertModel.from_pretrained(tmp_path).eval()
    assert torch.equal(encoder(input_ids, attention_mask).last_hidden_state, expected)


# --- saving, loading, remote code -------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["cerbertus_static", "triple"])
def test_save_and_load_round_trip_keeps_outputs_and_the_frozen_static_encoder(tmp_path, architecture):
    model = _model(**ARCHITECTURES[architecture])
    model.save_pretrained(tmp_path)
    loaded = MinBertForMultitask.from_pretrained(tmp_path).eval()
    assert loaded.config.architecture == model.config.architecture
    inputs = _inputs(model.config)
    expected, got = _logits(model, inputs), _logits(loaded, inputs)
    for task in TASKS:
        torch.testing.assert_close(got[task], expected[task], rtol=0, atol=1e-5)
    if loaded.static_bert is not None:
        assert not any(p.requires_grad for p in loaded.static_bert.parameters())


# --- optimizer, PCGrad, training ---------------------------------------------------------------------------


def test_task_layers_get_the_learning_rate_of_the_layer_they_copy():
    model = _model(task_specific_layers=1)
    groups = {g["name"]: g for g in build_parameter_groups(model, lr=1.0, layerwise_lr_decay=0.5)}
    assert groups["layer_1/decay"]["lr"] == 1.0 and groups["layer_0/decay"]["lr"] == 0.5
    assert {n.split(".")[1] for n in groups["layer_1/decay"]["param_names"]} == set(TASKS)
    assert all(n.startswith("bert.encoder.layer.0.") for n in groups["layer_0/decay"]["param_names"])
    assert {n.split(".")[1] for n in groups["pooler/decay"]["param_names"]} == set(TASKS)


def test_triple_bert_embeddings_get_the_embedding_learning_rate_and_freeze_with_them():
    model = _model(**ARCHITECTURES["triple"])
    groups = {g["name"]: g for g in build_parameter_groups(model, lr=1.0, layerwise_lr_decay=0.5)}
    assert groups["embeddings/decay"]["lr"] == 0.25
    assert {n.split(".")[1] for n in groups["embeddings/decay"]["param_names"]} == set(TASKS)
    frozen = _model(**ARCHITECTURES["triple"])
    build_parameter_groups(frozen, lr=1.0, freeze_encoder=True)
    assert {n.split(".")[0] for n, p in frozen.named_parameters() if p.requires_grad} == {"heads"}


def test_pcgrad_gives_each_tasks_own_layers_its_plain_gradient():
    model = _model(task_specific_layers=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    inputs = _inputs(model.config)
    losses = {task: model(**inputs, task=task, labels=LABELS[task]).loss for task in TASKS}
    own = model.task_encoders["sst"].encoder.layer["1"].output.dense.weight
    expected = torch.autograd.grad(losses["sst"], own, retain_graph=True)[0]
    shared = [p for n, p in model.named_parameters() if n.startswith("bert.")]
    pcgrad_backward(losses, shared, {task: model.task_parameters(task) for task in TASKS})
    torch.testing.assert_close(own.grad, expected)


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def _train(tmp_path, tokenizer, model, **overrides):
    settings = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=3, logging_steps=1,
                    eval_strategy="no", save_strategy="no", report_to="none", use_cpu=True, learning_rate=1e-3,
                    seed=0, max_seq_length=32, disable_tqdm=True)
    settings.update(overrides)
    trainer = MultitaskTrainer(model=model, args=MultitaskTrainingArguments(**settings), train_dataset=tiny_task_rows(),
                               processing_class=tokenizer)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer.train()
    return {name for name, p in model.named_parameters() if not torch.equal(before[name], p)}


@pytest.mark.slow
@pytest.mark.parametrize(
    "architecture, training",
    [
        ({"task_specific_layers": 1}, {"task_sampling": "all_tasks", "pcgrad": True}),
        ({"task_specific_layers": 2, "task_specific_embeddings": True}, {"task_sampling": "all_tasks", "smart_weight": "1"}),
        ({"static_encoder": True}, {"task_sampling": "all_tasks", "mnr_weight": 0.5}),
    ],
    ids=["cerbertus_pcgrad", "triple_smart", "static_mnr"],
)
def test_multitask_trainer_trains_every_part_but_the_static_encoder(tmp_path, tokenizer, architecture, training):
    model = tiny_model(**architecture)
    changed = _train(tmp_path, tokenizer, model, **training)
    owners = {name.split(".")[0] + ("." + name.split(".")[1] if name.startswith("task_encoders.") else "") for name in changed}
    expected = {"heads"} | ({"bert"} if hasattr(model, "bert") else set())
    expected |= {f"task_encoders.{task}" for task in model.config.tasks} if model.task_encoders is not None else set()
    assert expected <= owners
    assert not any(name.startswith("static_bert.") for name in changed)


def test_pipelines_answer_as_the_model_for_cerbertus_with_a_static_encoder(tokenizer):
    tasks = {**MinBertConfig().tasks, "sts": {**TASKS["sts"]}, "para": {**MinBertConfig().tasks["para"], "cosine_feature": True}}
    model = tiny_model(tasks=tasks, task_specific_layers=1, static_encoder=True).eval()
    pair = ("a gorgeous , witty film", "a fine and clever movie")
    answers = pipeline("minbert-multitask", model=model, tokenizer=tokenizer)(pair)
    joint = tokenizer(*pair, return_tensors="pt")
    a, b = tokenizer(pair[0], return_tensors="pt"), tokenizer(pair[1], return_tensors="pt")
    sides = {"input_ids_a": a["input_ids"], "attention_mask_a": a["attention_mask"],
             "input_ids_b": b["input_ids"], "attention_mask_b": b["attention_mask"]}
    with torch.no_grad():
        sst = model(**a, task="sst").logits.softmax(-1)[0]
        para = torch.sigmoid(model(**joint, **sides, task="para").logits)[0]
        sts = model(**sides, task="sts").logits[0]
    assert answers["sst"][0]["score"] == pytest.approx(float(sst.max()), abs=1e-5)
    para_score = answers["para"]["score"] if answers["para"]["label"] == "paraphrase" else 1 - answers["para"]["score"]
    assert para_score == pytest.approx(float(para), abs=1e-5)
    assert answers["sts"]["score"] == pytest.approx(min(max(float(sts), 0.0), 5.0), abs=1e-5)


# --- minbert train flags ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A pretrained encoder without heads, as a BERT checkpoint is."""
    path = tmp_path_factory.mktemp("checkpoint")
    MinBertModel(_model().config).save_pretrained(path)
    return str(path)


def _built(checkpoint, tmp_path, *flags):
    model_args, _, _, *_ = parse_arguments(["--model_name_or_path", checkpoint, "--output_dir", str(tmp_path), *flags])
    return build_model(model_args, task_specs(model_args, MinBertConfig().tasks))[1]


def test_head_flags_build_the_configured_heads(checkpoint, tmp_path):
    model = _built(checkpoint, tmp_path, "--head_layers", "sst=3,sts=2", "--head_dropout", "sst=0.3",
                   "--head_activation", "sst=tanh", "--head_pooling", "sst=mean", "--pair_encoding", "sts=bi",
                   "--bi_features", "sts=concat", "--cosine_feature", "para=true")
    sst = model.heads["sst"].layers
    assert [m.out_features for m in sst if isinstance(m, torch.nn.Linear)] == [32, 32, 5]
    assert sum(isinstance(m, torch.nn.Tanh) for m in sst) == 2
    assert {m.p for m in sst if isinstance(m, torch.nn.Dropout)} == {0.3}
    assert model.config.tasks["sst"]["head_pooling"] == "mean"
    assert isinstance(model.heads["sts"], MinBertBiEncoderHead)
    assert [m.in_features for m in model.heads["sts"].mlp.layers if isinstance(m, torch.nn.Linear)] == [3 * 32 + 1, 32]
    assert model.heads["para"].cosine_feature and model.heads["para"].layers[-1].in_features == 32 + 1


@pytest.mark.parametrize(
    "flags, architecture, k, static",
    [
        ([], "cerbertus", 2, False),  # a checkpoint without task heads gets the recipe's CerBERTus k=2
        (["--architecture", "multitask"], "multitask", 0, False),
        (["--architecture", "cerbertus", "--task_specific_layers", "1"], "cerbertus", 1, False),
        (["--task_specific_layers", "2"], "cerbertus", 2, False),
        (["--architecture", "triple"], "triple", 2, False),
        (["--static_encoder"], "cerbertus", 2, True),
        (["--architecture", "cerbertus", "--task_specific_layers", "1", "--static_encoder"], "cerbertus", 1, True),
    ],
)
def test_architecture_flags_build_the_architecture(checkpoint, tmp_path, flags, architecture, k, static):
    config = _built(checkpoint, tmp_path, *flags).config
    assert (config.architecture, config.task_specific_layers, config.static_encoder) == (architecture, k, static)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--architecture", "cerbertus"], "needs --task_specific_layers k with 1 <= k <= 2"),
        (["--task_specific_layers", "3"], "needs --task_specific_layers k with 1 <= k <= 2"),
        (["--architecture", "triple", "--task_specific_layers", "1"], "contradicts --architecture triple"),
        (["--architecture", "tree"], "choose one of multitask, cerbertus, triple"),
        (["--head_layers", "sst=2", "--head_activation", "sst=gleu"], "head_activation must be one of"),
    ],
)
def test_bad_architecture_flags_are_refused_by_name(checkpoint, tmp_path, flags, message):
    with pytest.raises(ValueError, match=message):
        _built(checkpoint, tmp_path, *flags)
