"""SMART regularizer: divergences, the ε-ball, hand-derived ascent, λ_s = 0, NaN guard, variants, mean teacher."""
import math

import pytest
import torch
import torch.nn.functional as F

from hf_minbert import MinBertConfig, MinBertForMultitask
from tests.helpers import random_batch
from trainers.smart import (
    MeanTeacher,
    SmartRegularizer,
    SmartSettings,
    logit_mse,
    normalize_per_example,
    per_example_norm,
    project_to_ball,
    smoothness_divergence,
    squared_error,
    symmetric_kl_bernoulli,
    symmetric_kl_categorical,
)

LABELS = {"sst": torch.tensor([0, 3, 4]), "para": torch.tensor([1.0, 0.0, 1.0]), "sts": torch.tensor([0.5, 2.0, 4.5])}
BI_TASKS = {
    "para": {"kind": "binary", "pair_encoding": "bi"},
    "sts": {"kind": "regression", "label_range": [0, 5], "pair_encoding": "bi"},
}


@pytest.fixture
def model(tiny_config):
    torch.manual_seed(0)
    return MinBertForMultitask(tiny_config).eval()


@pytest.fixture
def bi_model(tiny_config):
    torch.manual_seed(0)
    config = MinBertConfig.from_dict({**tiny_config.to_dict(), "tasks": BI_TASKS, "default_task": "sts"})
    return MinBertForMultitask(config).eval()


@pytest.fixture
def batch(tiny_config):
    return random_batch(tiny_config, batch=3, length=9)  # rows padded after 9, 7 and 5 tokens


def bi_batch(config):
    first, second = random_batch(config, 3, 9, pairs=False, seed=1), random_batch(config, 3, 6, pairs=False, seed=2)
    return {"input_ids_a": first["input_ids"], "attention_mask_a": first["attention_mask"],
            "input_ids_b": second["input_ids"], "attention_mask_b": second["attention_mask"]}


def count_forwards(model):
    """Counts calls of the model's forward and of the word-embedding lookup."""
    calls = {"model": 0, "embedding": 0}
    model.register_forward_pre_hook(lambda *_: calls.__setitem__("model", calls["model"] + 1))
    model.get_input_embeddings().register_forward_pre_hook(lambda *_: calls.__setitem__("embedding", calls["embedding"] + 1))
    return calls


# ---- divergences against closed forms ------------------------------------------------------------------


def test_symmetric_kl_categorical_is_kl_both_ways():
    p, q = [0.7, 0.2, 0.1], [0.5, 0.3, 0.2]
    expected = sum(a * math.log(a / b) for a, b in zip(p, q)) + sum(b * math.log(b / a) for a, b in zip(p, q))
    value = symmetric_kl_categorical(torch.tensor([p]).log() + 3.0, torch.tensor([q]).log() - 1.0)  # logits up to a shift
    assert value.shape == (1,)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_symmetric_kl_bernoulli_is_kl_both_ways_of_sigmoid_probabilities():
    a, b = 1.3, -0.4
    p, q = 1 / (1 + math.exp(-a)), 1 / (1 + math.exp(-b))
    kl = lambda x, y: x * math.log(x / y) + (1 - x) * math.log((1 - x) / (1 - y))  # noqa: E731
    value = symmetric_kl_bernoulli(torch.tensor([a]), torch.tensor([b]))
    assert value.item() == pytest.approx(kl(p, q) + kl(q, p), rel=1e-5)


def test_symmetric_kl_bernoulli_stays_finite_at_saturated_logits():
    value = symmetric_kl_bernoulli(torch.tensor([80.0, -80.0]), torch.tensor([70.0, 90.0]))
    assert torch.isfinite(value).all()
    assert value[1].item() == pytest.approx(170.0)  # probabilities 0 and 1: (0 − 1)·(−80 − 90)


def test_squared_error_and_logit_mse_match_closed_forms():
    assert squared_error(torch.tensor([1.0, 4.0]), torch.tensor([3.0, 4.5])).tolist() == [4.0, 0.25]
    a, b = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    assert logit_mse(a, b).item() == pytest.approx((1 + 4 + 0 + 4) / 4)


def test_smoothness_divergence_is_fp32_batch_mean_under_bf16_autocast():
    logits_p, logits_q = torch.randn(4, 5).bfloat16(), torch.randn(4, 5).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = smoothness_divergence("classification", logits_p, logits_q)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(symmetric_kl_categorical(logits_p.float(), logits_q.float()).mean().item(), rel=1e-6)


# ---- projection and normalisation ----------------------------------------------------------------------


def test_linf_projection_clamps_every_coordinate_to_epsilon():
    delta = torch.tensor([[[0.5, -0.02], [0.001, -3.0]]])
    (projected,) = project_to_ball([delta], 0.01, "linf")
    torch.testing.assert_close(projected, torch.tensor([[[0.01, -0.01], [0.001, -0.01]]]))


def test_l2_projection_shrinks_each_example_jointly_over_both_sentences_and_keeps_inside_points():
    side_a = torch.tensor([[[3.0, 0.0]], [[0.01, 0.0]]])
    side_b = torch.tensor([[[0.0, 4.0]], [[0.0, 0.0]]])
    projected = project_to_ball([side_a, side_b], 1.0, "l2")
    assert per_example_norm(projected, "l2").tolist() == pytest.approx([1.0, 0.01])
    torch.testing.assert_close(projected[0][0], torch.tensor([[0.6, 0.0]]))
    torch.testing.assert_close(projected[1][0], torch.tensor([[0.0, 0.8]]))
    assert torch.equal(projected[0][1], side_a[1])


def test_gradient_normalisation_is_per_example_and_leaves_zero_gradients_zero():
    grads = torch.tensor([[[2.0, -4.0]], [[0.0, 0.0]], [[3.0, 4.0]]])
    (linf,) = normalize_per_example([grads], "linf")
    (l2,) = normalize_per_example([grads], "l2")
    torch.testing.assert_close(linf, torch.tensor([[[0.5, -1.0]], [[0.0, 0.0]], [[0.75, 1.0]]]))
    torch.testing.assert_close(l2[2], torch.tensor([[0.6, 0.8]]))
    assert torch.isfinite(l2).all() and l2[1].abs().sum() == 0


# ---- end to end on a tiny model ------------------------------------------------------------------------


def test_default_linf_perturbation_lies_on_the_epsilon_ball(model, batch):
    smart = SmartRegularizer(SmartSettings(weights={"sst": 1.0}))  # σ = ε = 1e-5, η = 1e-3
    smart(model, batch, "sst", model(**batch, task="sst").logits)
    (delta,) = smart.stats.last_perturbation
    assert delta.abs().max().item() <= 1e-5
    assert delta.abs().max().item() == pytest.approx(1e-5)  # η ≫ ε: the projection is what bounds δ


def test_l2_perturbation_of_a_bi_encoder_pair_lies_in_the_ball_per_example(bi_model):
    inputs = bi_batch(bi_model.config)
    settings = SmartSettings(weights={"sts": 1.0}, norm="l2", epsilon=1e-3, step_size=1e-1, noise_std=1e-3)
    smart = SmartRegularizer(settings)
    smart(bi_model, inputs, "sts", bi_model(**inputs, task="sts").logits)
    delta_a, delta_b = smart.stats.last_perturbation
    assert per_example_norm([delta_a, delta_b], "l2").tolist() == pytest.approx([1e-3] * 3, rel=1e-5)
    assert delta_a.abs().sum() > 0 and delta_b.abs().sum() > 0  # both sentences perturbed


@pytest.mark.parametrize("variant", ["smart", "gaussian"])
def test_padding_positions_are_never_perturbed(model, batch, variant):
    smart = SmartRegularizer(SmartSettings(weights={"para": 1.0}, variant=variant))
    smart(model, batch, "para", model(**batch, task="para").logits)
    (delta,) = smart.stats.last_perturbation
    padding = batch["attention_mask"] == 0
    assert padding.any() and delta[padding].abs().sum() == 0
    assert (delta[~padding].abs().sum(-1) > 0).all()


def hand_symmetric_divergence(kind, adv, clean):
    """ℓ_s written out from probabilities, independently of trainers.smart (in float64: the KL terms of
    nearby distributions cancel to a few digits in fp32)."""
    adv, clean = adv.double(), clean.double()
    if kind == "classification":
        p, q = adv.softmax(-1), clean.softmax(-1)
        return ((p * (p / q).log()).sum(-1) + (q * (q / p).log()).sum(-1)).mean()
    if kind == "binary":
        p, q = torch.sigmoid(adv), torch.sigmoid(clean)
        kl = lambda x, y: x * (x / y).log() + (1 - x) * ((1 - x) / (1 - y)).log()  # noqa: E731
        return (kl(p, q) + kl(q, p)).mean()
    return ((adv - clean) ** 2).mean()


@pytest.mark.parametrize("task", ["sst", "para", "sts"])
def test_regularizer_equals_hand_computed_k1_ascent_value_and_gradients(model, batch, task):
    weight, sigma, eta, epsilon = 3.0, 1e-2, 2e-2, 2e-2  # large enough that δ moves and is partly clamped
    kind = model.config.task_spec(task)["kind"]
    inputs = {**batch, "labels": LABELS[task]}
    smart = SmartRegularizer(SmartSettings(weights={task: weight}, noise_std=sigma, step_size=eta, epsilon=epsilon))
    torch.manual_seed(7)
    value = smart(model, inputs, task, model(**batch, task=task).logits)
    grads = torch.autograd.grad(value, list(model.parameters()), allow_unused=True)

    mask = batch["attention_mask"].unsqueeze(-1).float()
    fixed = {"attention_mask": batch["attention_mask"], "token_type_ids": batch["token_type_ids"], "task": task}
    words = model.get_input_embeddings()(batch["input_ids"])
    clean = model(**batch, task=task).logits
    torch.manual_seed(7)
    delta = (torch.randn_like(words) * sigma * mask).requires_grad_()
    ascent_loss = hand_symmetric_divergence(kind, model(inputs_embeds=words.detach() + delta, **fixed).logits, clean.detach())
    (g,) = torch.autograd.grad(ascent_loss, delta)
    g = g * mask
    delta = ((delta.detach() + eta * g / g.abs().amax(dim=(1, 2), keepdim=True)).clamp(-epsilon, epsilon) * mask)
    expected = weight * hand_symmetric_divergence(kind, model(inputs_embeds=words + delta, **fixed).logits, clean)
    expected_grads = torch.autograd.grad(expected, list(model.parameters()), allow_unused=True)

    assert 0 < (delta.abs() == epsilon).float().mean() < 1  # the projection acted on some coordinates only
    torch.testing.assert_close(smart.stats.last_perturbation[0], delta)
    torch.testing.assert_close(value, expected.float(), rtol=1e-4, atol=1e-9)
    assert [g is None for g in grads] == [g is None for g in expected_grads]
    got = torch.cat([g.flatten() for g in grads if g is not None])
    want = torch.cat([g.flatten() for g in expected_grads if g is not None]).float()
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4 * want.abs().max().item())


def test_zero_weight_is_bitwise_the_plain_loss_without_any_extra_forward(model, batch):
    smart = SmartRegularizer(SmartSettings(weights={"sst": 0.0, "para": 5.0}))
    output = model(**batch, task="sst", labels=LABELS["sst"])
    calls = count_forwards(model)
    total = output.loss + smart(model, {**batch, "labels": LABELS["sst"]}, "sst", output.logits)
    assert calls == {"model": 0, "embedding": 0}
    assert torch.equal(total, output.loss) and total.dtype == output.loss.dtype
    assert smart.stats.computed == 0


def test_evaluation_without_grad_gets_no_regularizer_and_no_forward(model, batch):
    smart = SmartRegularizer(SmartSettings(weights=2.0))
    with torch.no_grad():
        logits = model(**batch, task="sst").logits
        calls = count_forwards(model)
        assert smart(model, batch, "sst", logits).item() == 0.0
    assert calls["model"] == 0


def test_perturbed_forwards_never_receive_labels_and_run_k_plus_one_times(model, batch):
    seen = []
    model.register_forward_pre_hook(lambda _, args, kwargs: seen.append(set(kwargs)), with_kwargs=True)
    smart = SmartRegularizer(SmartSettings(weights={"sts": 1.0}, steps=3))
    smart(model, {**batch, "labels": LABELS["sts"]}, "sts", model(**batch, task="sts").logits)
    perturbed = seen[1:]
    assert len(perturbed) == 4
    assert all("labels" not in keys and "inputs_embeds" in keys and "input_ids" not in keys for keys in perturbed)


@pytest.mark.parametrize("poisoned_call", [1, 2], ids=["ascent", "final"])
def test_non_finite_adversarial_loss_skips_the_regularizer_and_is_counted(model, batch, poisoned_call):
    calls = {"n": 0}

    def poison(_, args, kwargs, output):
        if kwargs.get("inputs_embeds") is not None:
            calls["n"] += 1
            if calls["n"] == poisoned_call:
                output.logits = output.logits * float("nan")
        return output

    model.register_forward_hook(poison, with_kwargs=True)
    smart = SmartRegularizer(SmartSettings(weights={"sst": 1.0}))
    value = smart(model, batch, "sst", model(**batch, task="sst").logits)
    assert value.item() == 0.0 and not value.requires_grad
    assert smart.stats.skipped_nonfinite == 1 and smart.stats.computed == 1


def test_regularizer_gradient_reaches_encoder_embedding_table_and_head(model, batch):
    smart = SmartRegularizer(SmartSettings(weights={"sst": 1.0}, epsilon=1e-2, noise_std=1e-2))
    smart(model, batch, "sst", model(**batch, task="sst").logits).backward()
    named = dict(model.named_parameters())
    for name in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
                 "bert.encoder.layer.1.output.dense.weight", "heads.sst.layers.1.weight"):
        assert named[name].grad is not None and named[name].grad.abs().sum() > 0, name


def test_gaussian_variant_is_the_mse_between_noisy_and_clean_logits(model, batch):
    smart = SmartRegularizer(SmartSettings(weights={"sst": 10.0}, variant="gaussian"))
    assert smart.settings.noise_std == 0.05  # seed 003's σ
    clean = model(**batch, task="sst").logits
    calls = count_forwards(model)
    torch.manual_seed(3)
    value = smart(model, batch, "sst", clean)
    assert calls["model"] == 1  # no ascent step

    torch.manual_seed(3)
    words = model.get_input_embeddings()(batch["input_ids"])
    noise = torch.randn_like(words) * 0.05 * batch["attention_mask"].unsqueeze(-1)
    noisy = model(inputs_embeds=words + noise, attention_mask=batch["attention_mask"],
                  token_type_ids=batch["token_type_ids"], task="sst").logits
    torch.testing.assert_close(value, 10.0 * F.mse_loss(noisy, clean))


def test_replayed_dropout_masks_leave_only_the_perturbation_to_measure(tiny_config, batch):
    torch.manual_seed(0)
    model = MinBertForMultitask(tiny_config).train()  # dropout 0.1 active
    values = {}
    for masks in ("fresh", "replay"):
        smart = SmartRegularizer(SmartSettings(weights={"sst": 1.0}, dropout_masks=masks))
        rng_state = smart.capture_rng_state("cpu")
        values[masks] = smart(model, batch, "sst", model(**batch, task="sst").logits, rng_state=rng_state).item()
    assert values["replay"] < 1e-8 < 1e-6 < values["fresh"]


def test_replay_without_a_captured_rng_state_is_an_error(tiny_config, batch):
    model = MinBertForMultitask(tiny_config).train()
    smart = SmartRegularizer(SmartSettings(weights={"sst": 1.0}, dropout_masks="replay"))
    with pytest.raises(ValueError, match="rng_state"):
        smart(model, batch, "sst", model(**batch, task="sst").logits)


def test_weights_naming_an_unknown_task_are_an_error(model, batch):
    smart = SmartRegularizer(SmartSettings(weights={"stsb": 1.0}))
    with pytest.raises(ValueError, match="stsb"):
        smart(model, batch, "sst", model(**batch, task="sst").logits)


@pytest.mark.parametrize("bad", [{"norm": "l1"}, {"variant": "vat"}, {"steps": 0}, {"epsilon": 0.0},
                                 {"weights": {"sst": -1.0}}, {"momentum": 1.0}, {"proximal_weight": float("nan")}])
def test_invalid_settings_are_rejected(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SmartSettings(**bad)


# ---- Bregman proximal point: the mean teacher ----------------------------------------------------------


def test_mean_teacher_update_is_an_exponential_moving_average(model):
    teacher = MeanTeacher(model, beta=0.9)
    before = {n: p.clone() for n, p in teacher.model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    teacher.update(model)
    for name, p in teacher.model.named_parameters():
        torch.testing.assert_close(p, before[name] + 0.1)  # 0.9·θ̃ + 0.1·(θ̃ + 1)
    assert not any(p.requires_grad for p in teacher.model.parameters())
    assert teacher.beta_at(0.05) == 0.99 and teacher.beta_at(0.5) == 0.9


def test_mean_teacher_stays_in_eval_mode_when_the_model_trains(model):
    teacher = MeanTeacher(model)
    model.train()
    assert not teacher.model.training


def test_proximal_term_is_mu_times_divergence_to_the_teacher_with_gradient_to_the_student_only(model, batch):
    smart = SmartRegularizer(SmartSettings(weights={}, proximal_weight=2.0), model=model)
    with torch.no_grad():
        model.heads["para"].layers[-1].bias.add_(0.5)  # the student moves away from θ0
    student = model(**batch, task="para").logits
    calls = count_forwards(model)
    value = smart(model, {**batch, "labels": LABELS["para"]}, "para", student)
    assert calls["model"] == 0  # λ_s = 0: only the teacher runs
    with torch.no_grad():
        anchor = smart.teacher.model(**batch, task="para").logits
    torch.testing.assert_close(value, 2.0 * symmetric_kl_bernoulli(student, anchor).mean())
    value.backward()
    assert model.heads["para"].layers[-1].bias.grad.abs().sum() > 0
    assert all(p.grad is None for p in smart.teacher.model.parameters())


def test_proximal_term_is_zero_at_the_teachers_weights_for_a_head_averaging_both_pair_orders(tiny_config, batch):
    torch.manual_seed(0)
    tasks = {**tiny_config.tasks, "para": {**tiny_config.tasks["para"], "average_pair_orders": True}}
    model = MinBertForMultitask(MinBertConfig.from_dict({**tiny_config.to_dict(), "tasks": tasks,
                                                         "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}))
    with torch.no_grad():
        model.heads["para"].layers[-1].weight.mul_(300)  # a head whose two orders answer apart
    smart = SmartRegularizer(SmartSettings(weights={}, proximal_weight=1.0), model=model)
    student = model.train()(**batch, task="para").logits
    assert smart(model, {**batch, "labels": LABELS["para"]}, "para", student).item() == pytest.approx(0.0, abs=1e-9)
    assert model.config.tasks["para"]["average_pair_orders"]  # the student's own head still averages when it predicts


def test_proximal_term_needs_the_model_at_construction():
    with pytest.raises(ValueError, match="proximal_weight"):
        SmartRegularizer(SmartSettings(weights={"sst": 1.0}, proximal_weight=1.0))


# ---- precision: ε must survive bf16 autocast ------------------------------------------------------------


def logit_change(model, batch, task, bf16, **settings):
    """√R_s of SMART at the default settings (dropout off): the size of the logit change the adversarial
    perturbation causes, as the regularizer sees it, computed under bf16 autocast or in fp32."""
    smart = SmartRegularizer(SmartSettings(weights={task: 1.0}, **settings))
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        value = smart(model, batch, task, model(**batch, task=task).logits)
    return value.detach().sqrt().item()


@pytest.mark.parametrize("task", ["sst", "sts"])
def test_default_epsilon_changes_the_logits_under_bf16_as_much_as_in_fp32(model, batch, task):
    in_fp32, in_bf16 = (logit_change(model, batch, task, bf16) for bf16 in (False, True))
    assert in_fp32 > 0
    assert in_fp32 / 2 <= in_bf16 <= 2 * in_fp32


def test_logit_change_under_bf16_grows_with_epsilon(model, batch):
    changes = [logit_change(model, batch, "sst", True, epsilon=epsilon) for epsilon in (1e-6, 1e-5, 1e-4)]
    assert changes[0] < changes[1] < changes[2]
    assert changes[2] > 50 * changes[0]  # linear in ε in this regime: 100× over two decades


# ---- the trainer's SMART: read from the training arguments ------------------------------------------------


def test_the_trainers_smart_settings_are_the_smart_arguments(model):
    from trainers import MultitaskTrainingArguments
    from trainers.multitask_state import build_smart

    args = MultitaskTrainingArguments(
        output_dir="/tmp/x", smart_weight="sst=2", smart_variant="gaussian", smart_steps=3, smart_step_size=0.01,
        smart_epsilon=1e-4, smart_noise_std=0.1, smart_norm="l2", smart_dropout_masks="replay",
        smart_proximal_weight=0.5, smart_momentum=0.9,
    )
    settings = build_smart(args, ["sst", "para", "sts"], model).settings
    assert settings == SmartSettings(weights={"sst": 2.0, "para": 0.0, "sts": 0.0}, variant="gaussian", steps=3,
                                     step_size=0.01, epsilon=1e-4, noise_std=0.1, norm="l2", dropout_masks="replay",
                                     proximal_weight=0.5, momentum=0.9)


def test_the_trainer_builds_no_smart_when_every_weight_is_zero(model):
    from trainers import MultitaskTrainingArguments
    from trainers.multitask_state import build_smart

    assert build_smart(MultitaskTrainingArguments(output_dir="/tmp/x"), ["sst", "para", "sts"], model) is None
