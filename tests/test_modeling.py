"""minBERT encoder and heads: parity with transformers' BERT, gradients, heads, and bad input."""
import copy

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, BertConfig, BertModel
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as transformers_logging

from hf_minbert import (
    MinBertConfig,
    MinBertForMultitask,
    MinBertForSequenceClassification,
    MinBertModel,
    modeling_minbert_unpadding,
)
from hf_minbert.modeling_minbert_unpadding import MinBertTokenLayout, plan_length_groups, token_rows
from tests.helpers import random_batch


def _max_diff_at_tokens(ours, theirs, mask):
    return max((a - b)[mask.bool()].abs().max().item() for a, b in zip(ours, theirs))


def _assert_parity(ours: MinBertModel, reference: BertModel, batch):
    ours.eval(), reference.eval()
    with torch.no_grad():
        a = ours(**batch, output_hidden_states=True)
        b = reference(**batch, output_hidden_states=True)
    assert len(a.hidden_states) == len(b.hidden_states)
    assert _max_diff_at_tokens(a.hidden_states, b.hidden_states, batch["attention_mask"]) <= 1e-4
    assert (a.pooler_output - b.pooler_output).abs().max().item() <= 1e-4


def test_embedded_minilm_matches_transformers_bert_on_padded_mixed_batch(minilm_path):
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    singles = tokenizer(["a short one", "a considerably longer single sentence, padded less"], padding=True, return_tensors="pt")
    pairs = tokenizer(["the cat sat", "is it raining?"], ["on the mat, quietly", "will it rain today?"], padding=True, return_tensors="pt")
    length = max(singles["input_ids"].shape[1], pairs["input_ids"].shape[1])
    mixed = {k: torch.cat([_pad(singles[k], length), _pad(pairs[k], length)]) for k in singles}
    assert mixed["token_type_ids"].any(), "the batch must contain pairs"
    assert (mixed["attention_mask"] == 0).any(), "the batch must contain padding"
    _assert_parity(MinBertModel.from_pretrained(minilm_path), BertModel.from_pretrained(minilm_path), mixed)


def _pad(t, length):
    return torch.nn.functional.pad(t, (0, length - t.shape[1]))


def test_random_12_layer_config_matches_transformers_bert():
    bert_config = BertConfig(hidden_size=64, num_hidden_layers=12, num_attention_heads=4, intermediate_size=128, vocab_size=100)
    reference = BertModel(bert_config)
    ours = MinBertModel(MinBertConfig.from_bert_config(bert_config))
    missing, unexpected = ours.load_state_dict(reference.state_dict(), strict=False)
    assert not missing and not set(unexpected) - {"embeddings.position_ids", "embeddings.token_type_ids"}
    _assert_parity(ours, reference, random_batch(ours.config, batch=4, length=12))


def test_every_parameter_gets_a_gradient(tiny_config):
    config = tiny_config
    model = MinBertForMultitask(config)
    batch = random_batch(config)
    labels = {"sst": torch.tensor([0, 4, 2]), "para": torch.tensor([1.0, 0.0, 1.0]), "sts": torch.tensor([0.5, 4.0, 2.5])}
    loss = sum(model(**batch, task=t, labels=y).loss for t, y in labels.items())
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


def test_inputs_embeds_path_equals_input_ids_path(tiny_config):
    model = MinBertForMultitask(tiny_config).eval()
    batch = random_batch(tiny_config)
    embeds = model.get_input_embeddings()(batch["input_ids"])
    for task in tiny_config.tasks:
        by_ids = model(**batch, task=task).logits
        by_embeds = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"], task=task).logits
        torch.testing.assert_close(by_ids, by_embeds, rtol=0, atol=1e-6)


def test_output_attentions_are_row_stochastic_and_match_sdpa_outputs(tiny_config):
    model = MinBertModel(tiny_config).eval()
    batch = random_batch(tiny_config)
    with torch.no_grad():
        plain = model(**batch)
        explicit = model(**batch, output_attentions=True)
    assert len(explicit.attentions) == tiny_config.num_hidden_layers
    torch.testing.assert_close(explicit.attentions[0].sum(-1), torch.ones_like(explicit.attentions[0].sum(-1)))
    padded = batch["attention_mask"] == 0
    assert explicit.attentions[0][1, :, :, padded[1]].abs().max() == 0, "padding must get no attention"
    torch.testing.assert_close(plain.last_hidden_state, explicit.last_hidden_state, rtol=0, atol=1e-5)


def test_attentions_returned_in_training_are_the_weights_after_dropout_as_bert_returns_them(tiny_config):
    config = copy.deepcopy(tiny_config)
    config.attention_probs_dropout_prob = 0.5
    model = MinBertModel(config).train()
    batch = random_batch(config)
    batch["attention_mask"] = torch.ones_like(batch["attention_mask"])  # no padding: no weight is 0 before dropout
    attentions = model(**batch, output_attentions=True).attentions[0]
    assert 0.4 < (attentions == 0).float().mean() < 0.6, "about half the weights are dropped"
    assert not torch.allclose(attentions.sum(-1), torch.ones(()), atol=1e-3), "the kept ones are scaled by 1 / (1 - p)"


def _ragged_batch(config):
    """Rows of very different lengths (cut into several length groups), one of them with a hole in its mask."""
    lengths = [40, 3, 38, 5, 4, 39, 2, 6]
    batch = random_batch(config, batch=len(lengths), length=40)
    mask = (torch.arange(40) < torch.tensor(lengths)[:, None]).long()
    mask[1, 1:3], mask[1, 38:] = 0, 1  # attends to positions 0, 38 and 39
    batch["attention_mask"] = mask
    assert len(MinBertTokenLayout(mask, *mask.shape).length_groups().shapes) > 1
    return batch


def test_token_rows_round_up_by_at_most_an_eighth_into_a_few_shapes_per_octave(monkeypatch):
    monkeypatch.setattr(modeling_minbert_unpadding, "CPU_ROW_STEPS_PER_OCTAVE", 8)
    for tokens in range(16, 5000):
        assert tokens <= token_rows(tokens, "cpu") <= tokens * 1.125
    assert {token_rows(tokens, "cpu") for tokens in range(1025, 2049)} == set(range(1152, 2049, 128))
    assert token_rows(15, "cpu") == 15 and token_rows(1000, "cuda") == 1000


@pytest.fixture
def machine_row_steps(monkeypatch):
    """Token-row rounding as a fresh process on a machine with or without AMX decides it (the environment unset)."""
    def on(amx):
        monkeypatch.delenv("MINBERT_CPU_ROW_STEPS", raising=False)
        monkeypatch.setattr(modeling_minbert_unpadding, "process_cpu_row_steps", None)
        monkeypatch.setattr(modeling_minbert_unpadding, "has_amx", lambda: amx)
    return on


@pytest.mark.parametrize("amx", [True, False])
def test_fp32_products_keep_exact_token_rows_by_default(machine_row_steps, amx):
    machine_row_steps(amx)
    assert [token_rows(tokens, "cpu", bf16_products=False) for tokens in (17, 1025, 1999)] == [17, 1025, 1999]


def test_bf16_products_keep_exact_token_rows_by_default_on_a_cpu_without_amx(machine_row_steps):
    machine_row_steps(False)
    assert [token_rows(tokens, "cpu", bf16_products=True) for tokens in (17, 1025, 1999)] == [17, 1025, 1999]


def test_bf16_products_round_token_rows_by_default_on_a_cpu_with_amx(machine_row_steps):
    machine_row_steps(True)
    assert [token_rows(tokens, "cpu", bf16_products=True) for tokens in (17, 1025, 1999)] == [18, 1152, 2048]


def test_the_environment_decides_token_rows_over_the_machine(machine_row_steps, monkeypatch):
    machine_row_steps(True)
    monkeypatch.setenv("MINBERT_CPU_ROW_STEPS", "0")
    assert token_rows(1025, "cpu", bf16_products=True) == 1025


def test_products_are_bf16_products_under_bf16_autocast_or_in_a_bf16_model():
    weight = torch.zeros(3, 4)
    assert not modeling_minbert_unpadding.products_in_bf16(weight)
    assert modeling_minbert_unpadding.products_in_bf16(weight.bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert modeling_minbert_unpadding.products_in_bf16(weight)


def test_a_bf16_model_rounds_every_tensor_of_a_batch_to_the_same_rows_on_a_cpu_with_amx(machine_row_steps, tiny_config):
    # the int64 ids and the bf16 hidden states of one batch must get the same row count (17 real tokens -> 18)
    model = MinBertModel(tiny_config).eval()
    ids = torch.randint(5, 99, (1, 17), generator=torch.Generator().manual_seed(0))
    machine_row_steps(False)
    exact = model.to(torch.bfloat16)(input_ids=ids).last_hidden_state
    machine_row_steps(True)
    torch.testing.assert_close(model(input_ids=ids).last_hidden_state, exact, rtol=0, atol=0)


def test_bf16_inputs_embeds_of_an_fp32_model_answer_as_with_exact_rows_on_a_cpu_with_amx(machine_row_steps, tiny_config):
    # the model's precision, not the input's, decides the rows: ids, positions and embeddings get the same ones
    model = MinBertModel(tiny_config).eval()
    embeds = torch.randn(1, 17, model.config.hidden_size).bfloat16()
    machine_row_steps(False)
    exact = model(inputs_embeds=embeds).last_hidden_state
    machine_row_steps(True)
    torch.testing.assert_close(model(inputs_embeds=embeds).last_hidden_state, exact, rtol=0, atol=0)


def test_every_tensor_a_layout_unpads_gets_the_rows_decided_for_the_batch(machine_row_steps):
    machine_row_steps(True)
    layout = MinBertTokenLayout(torch.ones(1, 17, dtype=torch.long), 1, 17, bf16_products=True)
    ids, states = layout.unpad(torch.ones(1, 17, dtype=torch.long)), layout.unpad(torch.ones(1, 17, 4))
    assert ids.shape[0] == states.shape[0] == 18


def test_an_fp16_model_keeps_exact_token_rows_on_a_cpu_with_amx(machine_row_steps):
    # only bf16 products were measured faster rounded
    machine_row_steps(True)
    assert not modeling_minbert_unpadding.products_in_bf16(torch.zeros(2, 2, dtype=torch.float16))
    with torch.autocast("cpu", dtype=torch.float16):
        assert not modeling_minbert_unpadding.products_in_bf16(torch.zeros(2, 2))


def test_token_rows_are_exact_while_torch_compile_traces(machine_row_steps, monkeypatch):
    # a compiled graph takes the row count as a dynamic size; rounding would guard on every new count
    machine_row_steps(True)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert token_rows(1025, "cpu", bf16_products=True) == 1025


def test_token_row_steps_come_from_the_environment_as_a_power_of_two():
    assert modeling_minbert_unpadding.cpu_row_steps_from_environment({}) is None
    assert modeling_minbert_unpadding.cpu_row_steps_from_environment({"MINBERT_CPU_ROW_STEPS": "8"}) == 8
    for bad in ("6", "eight", "-8"):
        with pytest.raises(ValueError, match=f"MINBERT_CPU_ROW_STEPS='{bad}': expected 0 .* or a power of two"):
            modeling_minbert_unpadding.cpu_row_steps_from_environment({"MINBERT_CPU_ROW_STEPS": bad})


def test_token_row_steps_set_empty_in_the_environment_are_unset():
    assert modeling_minbert_unpadding.cpu_row_steps_from_environment({"MINBERT_CPU_ROW_STEPS": ""}) is None


def test_the_token_matrix_carries_zero_spare_rows_that_padding_drops(monkeypatch):
    monkeypatch.setattr(modeling_minbert_unpadding, "CPU_ROW_STEPS_PER_OCTAVE", 8)
    mask = (torch.arange(12) < torch.tensor([12, 6, 9])[:, None]).long()  # 27 real tokens -> 28 rows
    layout = MinBertTokenLayout(mask, *mask.shape)
    padded = torch.randn(3, 12, 4) * mask[..., None]
    tokens = layout.unpad(padded)
    assert tokens.shape == (token_rows(27, "cpu"), 4) == (28, 4)
    assert tokens[27:].abs().max() == 0
    torch.testing.assert_close(layout.pad(tokens), padded, rtol=0, atol=0)


def test_length_groups_partition_the_rows_by_length_and_skip_empty_rows():
    lengths = [40, 3, 0, 38, 5, 4, 39, 2]
    groups = plan_length_groups(lengths, cost_per_group=1024)
    assert [(sorted(rows), width) for rows, width in groups] == [([0, 3, 6], 40), ([1, 4, 5, 7], 5)]


def test_length_grouped_attention_equals_attention_over_the_padded_batch(tiny_config):
    model = MinBertModel(tiny_config).eval()
    batch = _ragged_batch(tiny_config)
    with torch.no_grad():
        grouped = model(**batch)
        padded = model(**batch, output_attentions=True)  # the explicit product over the padded batch
    keep = batch["attention_mask"].bool()
    torch.testing.assert_close(grouped.last_hidden_state[keep], padded.last_hidden_state[keep], rtol=0, atol=1e-5)


def test_length_grouped_attention_gives_the_padded_batch_gradients(tiny_config):
    config = MinBertConfig(**{**tiny_config.to_dict(), "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    model = MinBertModel(config).train()
    batch = _ragged_batch(config)
    gradients = []
    for output_attentions in (False, True):
        model.zero_grad()
        out = model(**batch, output_attentions=output_attentions)
        (out.last_hidden_state.pow(2).sum() + out.pooler_output.pow(2).sum()).backward()
        gradients.append([p.grad.clone() for p in model.parameters()])
    for grouped, padded in zip(*gradients):
        torch.testing.assert_close(grouped, padded, rtol=1e-4, atol=1e-4)


def test_eager_attention_implementation_is_honoured_and_matches_sdpa(tiny_config, monkeypatch):
    sdpa_model = MinBertModel(tiny_config).eval()
    eager_model = MinBertModel._from_config(tiny_config, attn_implementation="eager").eval()
    eager_model.load_state_dict(sdpa_model.state_dict())
    batch = _ragged_batch(tiny_config)
    with torch.no_grad():
        expected = sdpa_model(**batch).last_hidden_state

        def no_sdpa(*args, **kwargs):
            raise AssertionError("attn_implementation='eager' called scaled_dot_product_attention")

        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", no_sdpa)
        eager = eager_model(**batch).last_hidden_state
    torch.testing.assert_close(eager, expected, rtol=0, atol=1e-5)


def test_task_none_means_default_task(tiny_config):
    model = MinBertForMultitask(tiny_config).eval()
    batch = random_batch(tiny_config)
    torch.testing.assert_close(model(**batch).logits, model(**batch, task=tiny_config.default_task).logits)


def test_logit_shapes_per_task_kind(tiny_config):
    model = MinBertForMultitask(tiny_config).eval()
    batch = random_batch(tiny_config, batch=3)
    assert model(**batch, task="sst").logits.shape == (3, 5)
    assert model(**batch, task="para").logits.shape == (3,)
    assert model(**batch, task="sts").logits.shape == (3,)


def test_losses_are_cross_entropy_bce_and_mse(tiny_config):
    model = MinBertForMultitask(tiny_config).eval()
    batch = random_batch(tiny_config)
    y_sst, y_para, y_sts = torch.tensor([0, 3, 4]), torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.0, 2.5, 5.0])
    out = model(**batch, task="sst", labels=y_sst)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, y_sst))
    out = model(**batch, task="para", labels=y_para)
    torch.testing.assert_close(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, y_para))
    out = model(**batch, task="sts", labels=y_sts)
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits, y_sts))


def test_bi_encoder_cosine_head_maps_cosine_onto_label_range(tiny_config):
    config = MinBertConfig(**{**tiny_config.to_dict(), "tasks": {"sts": {"kind": "regression", "label_range": [0, 5], "pair_encoding": "bi"}}, "default_task": "sts"})
    model = MinBertForMultitask(config).eval()
    a, b = random_batch(config, seed=1, pairs=False), random_batch(config, length=6, seed=2, pairs=False)
    out = model(input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"], input_ids_b=b["input_ids"], attention_mask_b=b["attention_mask"], task="sts")
    u, v = model.embed(a["input_ids"], a["attention_mask"]), model.embed(b["input_ids"], b["attention_mask"])
    torch.testing.assert_close(out.embeddings_a, u, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.embeddings_b, v, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.logits, 5 * torch.nn.functional.cosine_similarity(u, v), rtol=0, atol=1e-5)


def _bi_encoder_sts(tiny_config):
    tasks = {"sts": {"kind": "regression", "label_range": [0, 5], "pair_encoding": "bi"}}
    return MinBertForMultitask(MinBertConfig(**{**tiny_config.to_dict(), "tasks": tasks, "default_task": "sts"})).eval()


@pytest.mark.parametrize("rows_a, rows_b", [(3, 2), (2, 3)])
def test_bi_encoder_sides_of_different_lengths_are_refused(tiny_config, rows_a, rows_b):
    model = _bi_encoder_sts(tiny_config)
    a, b = random_batch(model.config, batch=rows_a, pairs=False), random_batch(model.config, batch=rows_b, pairs=False)
    with pytest.raises(ValueError, match=f"side a holds {rows_a} sentences and side b {rows_b}: one of each per pair"):
        model(input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"], input_ids_b=b["input_ids"],
              attention_mask_b=b["attention_mask"], task="sts")


def test_bi_encoder_without_its_second_side_is_refused(tiny_config):
    a = random_batch(tiny_config, pairs=False)
    with pytest.raises(ValueError, match="need both sides: input_ids_b .or inputs_embeds_b. is missing"):
        _bi_encoder_sts(tiny_config)(input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"], task="sts")


def test_bi_encoder_mask_of_another_shape_than_its_side_is_refused(tiny_config):
    a, b = random_batch(tiny_config, pairs=False), random_batch(tiny_config, length=6, pairs=False)
    with pytest.raises(ValueError, match=r"attention_mask_b has shape \(3, 9\), its sentences \(3, 6\)"):
        _bi_encoder_sts(tiny_config)(input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"],
                                     input_ids_b=b["input_ids"], attention_mask_b=a["attention_mask"], task="sts")


def test_bi_encoder_concat_features_head_trains(tiny_config):
    spec = {"kind": "binary", "pair_encoding": "bi", "bi_features": "concat", "head_layers": 2}
    config = MinBertConfig(**{**tiny_config.to_dict(), "tasks": {"para": spec}, "default_task": "para"})
    model = MinBertForMultitask(config)
    a, b = random_batch(config, seed=1), random_batch(config, seed=2)
    out = model(input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"], input_ids_b=b["input_ids"],
                attention_mask_b=b["attention_mask"], task="para", labels=torch.tensor([1.0, 0.0, 1.0]))
    out.loss.backward()
    assert model.heads["para"].mlp.layers[-1].weight.grad.abs().sum() > 0


def test_head_depth_and_pooling_follow_the_task_spec(tiny_config):
    spec = {"kind": "classification", "labels": ["a", "b", "c"], "head_layers": 3, "head_pooling": "mean"}
    config = MinBertConfig(**{**tiny_config.to_dict(), "tasks": {"t": spec}, "default_task": "t"})
    model = MinBertForMultitask(config)
    linears = [m for m in model.heads["t"].modules() if isinstance(m, torch.nn.Linear)]
    assert [linear.out_features for linear in linears] == [config.hidden_size, config.hidden_size, 3]
    assert model(**random_batch(config)).logits.shape == (3, 3)


def test_bert_checkpoint_loads_with_missing_heads_reported(minilm_path):
    model, info = MinBertForMultitask.from_pretrained(minilm_path, output_loading_info=True)
    missing = set(info["missing_keys"])
    assert {"heads.sst.layers.1.weight", "heads.para.layers.1.weight", "heads.sts.layers.1.weight"} <= missing
    assert not any(k.startswith("bert.") for k in missing), "every encoder weight must come from the checkpoint"
    assert not info["unexpected_keys"], "the checkpoint's position_ids buffer is known, not unexpected"
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6


def test_bert_checkpoint_loads_without_transformers_model_type_warning(minilm_path):
    # transformers warns that a `bert` config read as another model type "can yield errors": minBERT reads BERT
    # configs by design, and the warning in every training log would say otherwise.
    with CaptureLogger(transformers_logging.get_logger("transformers.configuration_utils")) as captured:
        MinBertForMultitask.from_pretrained(minilm_path)
    assert "to instantiate a model of type" not in captured.out


# --- bad input -------------------------------------------------------------------------------------------


def test_unknown_model_type_is_refused_by_name(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type='gpt2'"):
        MinBertForMultitask.from_pretrained(tmp_path)


def test_unknown_task_lists_the_known_ones(tiny_config):
    model = MinBertForMultitask(tiny_config)
    with pytest.raises(ValueError, match="unknown task 'nli'.*sst, para, sts"):
        model(**random_batch(tiny_config), task="nli")


@pytest.mark.parametrize(
    "task, labels, message",
    [
        ("sst", torch.tensor([0, 5, 1]), r"class labels must lie in \[0, 5\)"),
        ("sst", torch.tensor([[0, 1], [1, 2], [2, 0]]), "labels must have shape"),
        ("para", torch.tensor([0.0, 2.0, 1.0]), r"binary labels must lie in \[0, 1\]"),
        ("sts", torch.tensor([0.0, 5.5, 1.0]), r"regression labels must lie in \[0.0, 5.0\]"),
        ("sts", torch.tensor([1.0, 2.0]), "labels must have shape"),
        ("sts", torch.tensor([1.0, float("nan"), 2.0]), "NaN"),
    ],
)
def test_labels_of_wrong_shape_or_range_raise_clear_errors(tiny_config, task, labels, message):
    model = MinBertForMultitask(tiny_config)
    with pytest.raises(ValueError, match=message):
        model(**random_batch(tiny_config), task=task, labels=labels)


@pytest.mark.parametrize("task, labels", [("sts", [3.8, 4.9, 0.1]), ("para", [0.73, 0.05, 0.999])])
def test_a_loss_of_bf16_logits_reads_its_labels_unrounded(task, labels):
    from hf_minbert.modeling_minbert_heads import task_loss

    spec = MinBertConfig().task_spec(task)
    logits, labels = torch.tensor([2.5, 4.0, 0.5], dtype=torch.bfloat16), torch.tensor(labels)
    loss = task_loss(spec, task, logits, labels)
    exact = (F.mse_loss if task == "sts" else F.binary_cross_entropy_with_logits)(logits.float(), labels)
    assert loss.dtype == torch.float32 and torch.equal(loss, exact)


@pytest.mark.parametrize("task, labels", [("sst", [0, 3, 4]), ("para", [1.0, 0.0, 1.0]), ("sts", [0.5, 2.0, 4.5])])
def test_labels_in_a_column_give_the_loss_of_labels_in_a_row(tiny_config, task, labels):
    model, batch, labels = MinBertForMultitask(tiny_config).eval(), random_batch(tiny_config), torch.tensor(labels)
    row = model(**batch, task=task, labels=labels).loss
    assert torch.equal(model(**batch, task=task, labels=labels[:, None]).loss, row)


def test_sequence_longer_than_position_table_is_refused(tiny_config):
    model = MinBertModel(tiny_config)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings"):
        model(input_ids=torch.ones(1, tiny_config.max_position_embeddings + 1, dtype=torch.long))


def test_a_bi_encoded_classification_head_without_concatenated_features_is_refused_naming_the_task():
    nli = {"kind": "classification", "labels": ["entailment", "neutral", "contradiction"], "pair_encoding": "bi"}
    with pytest.raises(ValueError, match="^task 'nli': a bi-encoded classification head reads bi_features='concat'"):
        MinBertConfig(tasks={"nli": nli}, default_task="nli")
    MinBertConfig(tasks={"nli": {**nli, "bi_features": "concat"}}, default_task="nli")


def test_unknown_task_spec_field_is_an_error():
    with pytest.raises(ValueError, match="unknown field"):
        MinBertConfig(tasks={"sst": {"kind": "classification", "labels": ["a", "b"], "head_layer": 2}})


def test_sequence_classification_model_has_the_standard_shape(tiny_config):
    tiny_config.num_labels = 3
    model = MinBertForSequenceClassification(tiny_config)
    out = model(**random_batch(tiny_config), labels=torch.tensor([0, 2, 1]))
    assert out.logits.shape == (3, 3) and out.loss.ndim == 0


# --- cosine feature on cross-encoder heads ---------------------------------------------------------------


def _cosine_feature_model(tiny_config, kind="regression"):
    spec = {"kind": "regression", "label_range": [0, 5]} if kind == "regression" else {"kind": "binary"}
    config = MinBertConfig(**{**tiny_config.to_dict(), "tasks": {"t": {**spec, "pair_encoding": "cross", "cosine_feature": True}}, "default_task": "t"})
    return MinBertForMultitask(config).eval()


def _pair_inputs(config):
    joint, a, b = random_batch(config), random_batch(config, seed=1, pairs=False), random_batch(config, length=6, seed=2, pairs=False)
    return {**joint, "input_ids_a": a["input_ids"], "attention_mask_a": a["attention_mask"],
            "input_ids_b": b["input_ids"], "attention_mask_b": b["attention_mask"]}


def test_cosine_feature_head_starts_as_the_bi_encoder_mapping(tiny_config):
    model = _cosine_feature_model(tiny_config)
    inputs = _pair_inputs(tiny_config)
    head = model.heads["t"].layers[-1]
    torch.testing.assert_close(head.weight[0, -1], torch.tensor(5.0))
    out = model(**inputs, task="t")
    cosine = torch.nn.functional.cosine_similarity(out.embeddings_a, out.embeddings_b)
    pooled = model.bert(inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"]).pooler_output
    expected = pooled @ head.weight[0, :-1] + 5 * cosine + head.bias[0]
    torch.testing.assert_close(out.logits, expected, rtol=0, atol=1e-5)


def test_cosine_feature_init_survives_save_and_load_without_reinit(tmp_path, tiny_config):
    model = _cosine_feature_model(tiny_config, kind="binary")
    with torch.no_grad():
        model.heads["t"].layers[-1].weight[0, -1] = 3.25  # as if trained
    model.save_pretrained(tmp_path)
    reloaded = MinBertForMultitask.from_pretrained(tmp_path)
    assert reloaded.heads["t"].layers[-1].weight[0, -1].item() == 3.25


def test_cosine_feature_head_without_the_sentences_is_a_clear_error(tiny_config):
    model = _cosine_feature_model(tiny_config)
    with pytest.raises(ValueError, match="cosine_feature also needs the sentences alone"):
        model(**random_batch(tiny_config), task="t")


def test_cosine_feature_is_refused_on_bi_encoder_heads():
    with pytest.raises(ValueError, match="cross-encoded pair heads only"):
        MinBertConfig(tasks={"t": {"kind": "regression", "pair_encoding": "bi", "cosine_feature": True}})


def test_hidden_states_at_padding_positions_are_zero(tiny_config):
    # The encoder computes real tokens only (unpadding); padding rows come back as zeros, not garbage.
    model = MinBertModel(tiny_config).eval()
    batch = random_batch(tiny_config)
    hidden = model(**batch).last_hidden_state
    assert hidden[batch["attention_mask"] == 0].abs().max() == 0
    assert hidden[batch["attention_mask"] == 1].abs().min() > 0


def test_attention_mask_of_the_wrong_shape_names_both_shapes(tiny_config):
    model = MinBertModel(tiny_config)
    batch = random_batch(tiny_config, batch=2, length=8)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 7\); expected \(2, 8\)"):
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"][:, :7])


def test_a_row_padded_on_the_left_is_refused_naming_the_row(tiny_config):
    # Its [CLS] would be a padding slot: every head reading position 0 would answer the same for any input.
    model = MinBertModel(tiny_config)
    batch = random_batch(tiny_config, batch=3, length=8)
    mask = torch.ones(3, 8, dtype=torch.long)
    mask[1, :3] = 0
    with pytest.raises(ValueError, match=r"attention_mask row 1 does not attend to its first token: .*padding_side"):
        model(input_ids=batch["input_ids"], attention_mask=mask)


def test_a_row_with_no_token_attended_is_refused(tiny_config):
    model = MinBertModel(tiny_config)
    batch = random_batch(tiny_config, batch=2, length=8)
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[0] = 0
    with pytest.raises(ValueError, match="attention_mask row 0 does not attend to its first token"):
        model(input_ids=batch["input_ids"], attention_mask=mask)


def test_a_bert_for_pretraining_checkpoint_loads_like_bert_base_uncased(tmp_path):
    # bert-base-uncased ships BertForPreTraining weights ("bert." prefix plus the cls.* MLM/NSP heads).
    from transformers import BertForPreTraining

    bert_config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=100)
    reference = BertForPreTraining(bert_config).eval()
    reference.save_pretrained(tmp_path)
    model, info = MinBertForMultitask.from_pretrained(tmp_path, output_loading_info=True)
    assert any(key.startswith("cls.") for key in info["unexpected_keys"])
    assert not any(key.startswith("bert.") for key in info["missing_keys"])
    _assert_parity(model.bert, reference.bert, random_batch(model.config, batch=3, length=10))


# --- traced and exported graphs ------------------------------------------------------------------------------


def _masked_batch(config, batch, length, lengths, seed):
    torch.manual_seed(seed)
    input_ids = torch.randint(5, config.vocab_size, (batch, length))
    attention_mask = (torch.arange(length) < torch.tensor(lengths)[:, None]).long()
    return input_ids, attention_mask


def test_a_jit_traced_encoder_answers_other_batch_shapes_and_masks_as_the_model_does(tiny_config):
    # The traced graph keeps the padded batch: an unpadded one would fix the real-token count it met.
    model = MinBertModel(tiny_config).eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, _masked_batch(tiny_config, 3, 10, [10, 6, 3], seed=0), strict=False)
        for inputs in (_masked_batch(tiny_config, 2, 8, [5, 8], seed=1), _masked_batch(tiny_config, 4, 12, [2, 12, 7, 1], seed=2)):
            expected = model(*inputs).last_hidden_state
            torch.testing.assert_close(traced(*inputs)["last_hidden_state"], expected, rtol=0, atol=1e-5)


def test_an_exported_encoder_answers_other_batch_shapes_and_masks_as_the_model_does(tiny_config):
    model = MinBertModel(tiny_config).eval()
    batch, length = torch.export.Dim("batch", max=16), torch.export.Dim("length", max=64)
    exported = torch.export.export(model, _masked_batch(tiny_config, 3, 10, [10, 6, 3], seed=0),
                                   dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length})).module()
    with torch.no_grad():
        for inputs in (_masked_batch(tiny_config, 3, 10, [4, 10, 9], seed=1), _masked_batch(tiny_config, 2, 8, [5, 8], seed=2)):
            torch.testing.assert_close(exported(*inputs).last_hidden_state, model(*inputs).last_hidden_state,
                                       rtol=0, atol=1e-5)


def _exported(model, example, dims):
    return torch.export.export(model, example, dynamic_shapes=dims).module()


def test_an_exported_encoder_refuses_a_row_padded_on_the_left_at_run_time(tiny_config):
    # The graph cannot raise as the eager model does; torch.export keeps the check as an assert.
    batch, length = torch.export.Dim("batch", max=16), torch.export.Dim("length", max=64)
    exported = _exported(MinBertModel(tiny_config).eval(), _masked_batch(tiny_config, 3, 10, [10, 6, 3], seed=0),
                         ({0: batch, 1: length}, {0: batch, 1: length}))
    input_ids, attention_mask = _masked_batch(tiny_config, 2, 8, [5, 8], seed=1)
    with pytest.raises(RuntimeError, match="does not attend to its first token"):
        exported(input_ids, attention_mask.flip(1))


class _BiEncodedSimilarity(torch.nn.Module):
    """The sts head bi-encoded, called with a pair's two sentences alone (what a traced or exported graph takes)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids_a, mask_a, ids_b, mask_b):
        return self.model(input_ids_a=ids_a, attention_mask_a=mask_a, input_ids_b=ids_b, attention_mask_b=mask_b,
                          task="sts").logits


def _sides(config, lengths_a, lengths_b, seed):
    return (*_masked_batch(config, len(lengths_a), max(lengths_a), lengths_a, seed),
            *_masked_batch(config, len(lengths_b), max(lengths_b), lengths_b, seed + 1))


@pytest.mark.parametrize("record", ["trace", "export"])
def test_a_recorded_bi_encoder_answers_sides_of_any_lengths_as_the_model_does(tiny_config, record):
    # Recorded with side a the longer; then side b the longer (padded by a negative amount, it was cropped).
    tiny_config.tasks["sts"]["pair_encoding"] = "bi"
    model = _BiEncodedSimilarity(MinBertForMultitask(tiny_config).eval())
    example = _sides(tiny_config, [8, 5], [6, 6], seed=0)
    with torch.no_grad():
        if record == "trace":
            graph = torch.jit.trace(model, example, strict=False)
        else:
            # each side up to 60 of the 64 positions: the sides together may exceed them
            batch, a, b = (torch.export.Dim(name, max=60) for name in ("batch", "length_a", "length_b"))
            graph = _exported(model, example, ({0: batch, 1: a}, {0: batch, 1: a}, {0: batch, 1: b}, {0: batch, 1: b}))
        for inputs in (_sides(tiny_config, [5, 5], [9, 2], seed=2), _sides(tiny_config, [9, 4], [7, 3], seed=4)):
            torch.testing.assert_close(graph(*inputs), model(*inputs), rtol=0, atol=1e-5)


def test_an_exported_head_averaging_both_pair_orders_answers_as_the_model_does(tiny_config):
    tiny_config.tasks["para"]["average_pair_orders"] = True
    model = MinBertForMultitask(tiny_config).eval()
    input_ids, attention_mask = _masked_batch(tiny_config, 3, 10, [10, 6, 4], seed=0)
    token_type_ids = (torch.arange(10) >= 2).long().expand(3, 10) * attention_mask  # "[CLS] a [SEP]" is 2 tokens
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids, "task": "para"}
    exported = torch.export.export(model, (), kwargs=inputs).module()
    with torch.no_grad():
        torch.testing.assert_close(exported(**inputs).logits, model(**inputs).logits, rtol=0, atol=1e-6)


def test_a_bf16_classifiers_loss_is_computed_in_float32(tiny_config):
    model = MinBertForSequenceClassification(MinBertConfig(**{**tiny_config.to_dict(), "num_labels": 3})).to(torch.bfloat16)
    batch = random_batch(model.config, pairs=False)
    assert model(**batch, labels=torch.tensor([0, 2, 1])).loss.dtype == torch.float32


def test_a_bf16_masked_lms_loss_is_computed_in_float32(tiny_config):
    from hf_minbert import MinBertForMaskedLM

    model = MinBertForMaskedLM(tiny_config).to(torch.bfloat16)
    batch = random_batch(model.config, pairs=False)
    assert model(**batch, labels=batch["input_ids"]).loss.dtype == torch.float32


def test_a_fresh_regression_head_starts_mid_range(tiny_config):
    rate = {"kind": "regression", "label_range": [1.0, 10.0], "pair_encoding": "cross"}
    model = MinBertForMultitask(MinBertConfig(**{**tiny_config.to_dict(), "tasks": {"rate": rate}, "default_task": "rate"}))
    assert model.heads["rate"].layers[-1].bias.item() == 5.5


def test_a_loaded_regression_head_keeps_its_trained_bias_and_a_new_one_starts_mid_range(tmp_path, tiny_config):
    rate = {"kind": "regression", "label_range": [1.0, 10.0], "pair_encoding": "cross"}
    config = MinBertConfig(**{**tiny_config.to_dict(), "tasks": {"rate": rate}, "default_task": "rate"})
    model = MinBertForMultitask(config)
    model.heads["rate"].layers[-1].bias.data.fill_(7.0)
    model.save_pretrained(tmp_path)
    grown = MinBertForMultitask.from_pretrained(tmp_path, tasks={"rate": rate, "score": {**rate, "label_range": [0, 2]}})
    assert grown.heads["rate"].layers[-1].bias.item() == 7.0 and grown.heads["score"].layers[-1].bias.item() == 1.0
