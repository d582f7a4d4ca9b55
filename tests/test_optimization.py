"""Specification of hf_minbert.optimization: the hand-written AdamW and the LLRD parameter groups."""
import copy
import io

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, BertModel

from hf_minbert import MinBertConfig, kernels, optimization
from hf_minbert.modeling_minbert import MinBertForMultitask
from hf_minbert.optimization import AdamW, build_parameter_groups, create_optimizer, describe_parameter_groups

NUM_LAYERS = 3


def tiny_bert_config():
    return BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,  # deterministic gradients, so two optimizers see the same ones
        attention_probs_dropout_prob=0.0,
        num_labels=3,
    )


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    # Models this small run fastest on one thread; on a shared 2-core machine more threads only contend.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def bert_classifier():
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_bert_config())


@pytest.fixture
def multitask_model(tiny_config):
    torch.manual_seed(0)
    return MinBertForMultitask(tiny_config)


def random_batches(count, vocab_size=50, num_labels=3):
    generator = torch.Generator().manual_seed(1)
    return [
        dict(
            input_ids=torch.randint(0, vocab_size, (4, 8), generator=generator),
            labels=torch.randint(0, num_labels, (4,), generator=generator),
        )
        for _ in range(count)
    ]


def train(model, optimizer, batches, scheduler=None):
    for batch in batches:
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def max_parameter_difference(model_a, model_b):
    return max((a - b).abs().max().item() for a, b in zip(model_a.parameters(), model_b.parameters()))


def llrd_groups(model):
    return build_parameter_groups(model, lr=1e-2, weight_decay=0.01, layerwise_lr_decay=0.8, head_lr_multiplier=2.0)


def lrs_by_name(groups):
    return {group["name"]: group["lr"] for group in groups}


def grouped_names(groups):
    return [name for group in groups for name in group["param_names"]]


# ---------------------------------------------------------------------------------------------------------
# AdamW
# ---------------------------------------------------------------------------------------------------------


def test_adamw_defaults_equal_torch_adamw():
    param = nn.Parameter(torch.zeros(2))
    ours, theirs = AdamW([param]).defaults, torch.optim.AdamW([param]).defaults
    for key in ("lr", "betas", "eps", "weight_decay"):
        assert ours[key] == theirs[key], key


# A model's training magnifies last-place differences: torch's own fused and foreach AdamW drift 5e-4 apart over
# these 100 steps. So the foreach update, which performs torch's foreach ops, is compared over a whole run,
# and the C kernel, which rounds its own way, one step at a time (then within torch fused's drift over a run).


@pytest.mark.slow
def test_adamw_foreach_update_equals_torch_adamw_over_100_steps_with_llrd_groups_and_weight_decay(bert_classifier):
    twin = copy.deepcopy(bert_classifier)
    batches = random_batches(100)
    train(bert_classifier, AdamW(llrd_groups(bert_classifier), use_kernel=False), batches)
    train(twin, torch.optim.AdamW(llrd_groups(twin)), batches)

    assert max_parameter_difference(bert_classifier, twin) <= 1e-6


def warmup_then_linear_decay(step):
    return min((step + 1) / 10, (100 - step) / 90)


@pytest.mark.slow
def test_adamw_foreach_update_equals_torch_adamw_under_a_lambda_lr_schedule(bert_classifier):
    twin = copy.deepcopy(bert_classifier)
    batches = random_batches(100)
    ours = AdamW(llrd_groups(bert_classifier), use_kernel=False)
    theirs = torch.optim.AdamW(llrd_groups(twin))
    train(bert_classifier, ours, batches, torch.optim.lr_scheduler.LambdaLR(ours, warmup_then_linear_decay))
    train(twin, theirs, batches, torch.optim.lr_scheduler.LambdaLR(theirs, warmup_then_linear_decay))

    assert max_parameter_difference(bert_classifier, twin) <= 1e-6
    assert [group["lr"] for group in ours.param_groups] == [group["lr"] for group in theirs.param_groups]


def largest_step_difference(model, optimizer, twin, twin_optimizer, batches, schedule=None):
    """Train both on the same batches, the twin taking `model`'s parameters back after every step, so that each
    step starts both from the same parameters and gradients; the largest difference one step made."""
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, schedule) for o in (optimizer, twin_optimizer)] if schedule else []
    largest = 0.0
    for batch in batches:
        for one_model, one_optimizer in ((model, optimizer), (twin, twin_optimizer)):
            one_optimizer.zero_grad()
            one_model(**batch).loss.backward()
            one_optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
        largest = max(largest, max_parameter_difference(model, twin))
        twin.load_state_dict(model.state_dict())
    return largest


@pytest.mark.slow
@pytest.mark.parametrize("schedule", [None, warmup_then_linear_decay], ids=["constant_lr", "lambda_lr"])
def test_adamw_c_kernel_equals_torch_adamw_step_for_step_over_100_steps_with_llrd_groups(bert_classifier, schedule):
    twin = copy.deepcopy(bert_classifier)
    ours, theirs = AdamW(llrd_groups(bert_classifier)), torch.optim.AdamW(llrd_groups(twin))
    assert largest_step_difference(bert_classifier, ours, twin, theirs, random_batches(100), schedule) <= 1e-6
    assert optimization._KERNEL.usable


@pytest.mark.slow
def test_adamw_c_kernel_drifts_from_torch_adamw_over_a_run_no_more_than_torch_fused_adamw_does(bert_classifier):
    models = {name: copy.deepcopy(bert_classifier) for name in ("ours", "fused", "foreach")}
    optimizers = {"ours": AdamW(llrd_groups(models["ours"])),
                  "fused": torch.optim.AdamW(llrd_groups(models["fused"]), fused=True),
                  "foreach": torch.optim.AdamW(llrd_groups(models["foreach"]), foreach=True)}
    for name, model in models.items():
        train(model, optimizers[name], random_batches(100))
    torch_drift = max_parameter_difference(models["fused"], models["foreach"])
    assert 0 < max_parameter_difference(models["ours"], models["foreach"]) <= 3 * torch_drift


def test_adamw_actually_moves_the_parameters(bert_classifier):
    before = copy.deepcopy(bert_classifier)
    train(bert_classifier, AdamW(llrd_groups(bert_classifier)), random_batches(3))
    assert max_parameter_difference(bert_classifier, before) > 1e-3


def test_adamw_decouples_weight_decay_from_the_gradient():
    # A zero gradient leaves Adam's update at zero, so only the decay p *= 1 - lr * wd remains.
    param = nn.Parameter(torch.full((3,), 2.0))
    optimizer = AdamW([param], lr=0.1, weight_decay=0.5)
    param.grad = torch.zeros(3)
    optimizer.step()
    assert torch.allclose(param.detach(), torch.full((3,), 2.0 * (1 - 0.1 * 0.5)))


def test_adamw_first_step_is_lr_times_sign_of_gradient_thanks_to_bias_correction():
    param = nn.Parameter(torch.zeros(3))
    optimizer = AdamW([param], lr=0.1, weight_decay=0.0, eps=0.0)
    param.grad = torch.tensor([3.0, -0.5, 1e-3])
    optimizer.step()
    assert torch.allclose(param.detach(), torch.tensor([-0.1, 0.1, -0.1]))


def test_adamw_skips_parameters_without_gradient_and_leaves_their_state_alone():
    used, unused = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    optimizer = AdamW([used, unused], lr=0.1)
    used.grad, unused.grad = torch.ones(2), torch.ones(2)
    optimizer.step()
    state_before = copy.deepcopy(optimizer.state[unused])
    value_before = unused.detach().clone()

    unused.grad = None
    used.grad = torch.ones(2)
    optimizer.step()

    assert torch.equal(unused.detach(), value_before)
    assert optimizer.state[unused]["step"] == state_before["step"] == 1
    assert torch.equal(optimizer.state[unused]["exp_avg"], state_before["exp_avg"])
    assert optimizer.state[used]["step"] == 2


def test_adamw_parameter_that_skipped_steps_keeps_its_own_bias_correction_like_torch():
    ours_params = [nn.Parameter(torch.full((3,), value)) for value in (1.0, -2.0)]
    torch_params = [nn.Parameter(p.detach().clone()) for p in ours_params]
    ours, theirs = AdamW(ours_params, lr=0.1), torch.optim.AdamW(torch_params, lr=0.1)
    for step in range(4):
        for params, optimizer in ((ours_params, ours), (torch_params, theirs)):
            params[0].grad = torch.tensor([0.5, -1.0, 2.0]) * (step + 1)
            params[1].grad = None if step == 1 else torch.tensor([1.0, 0.25, -0.5])  # one group, two step counts
            optimizer.step()
    for a, b in zip(ours_params, torch_params):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)


def wide_linear_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 512), nn.Tanh(), nn.Linear(512, 3))


def train_regression(model, optimizer, steps=20):
    generator = torch.Generator().manual_seed(2)
    for _ in range(steps):
        inputs, targets = torch.randn(8, 256, generator=generator), torch.randn(8, 3, generator=generator)
        optimizer.zero_grad()
        (model(inputs) - targets).pow(2).mean().backward()
        optimizer.step()


def test_adamw_c_kernel_trains_a_model_like_torch_adamw():
    ours_model = wide_linear_model()
    twin = copy.deepcopy(ours_model)

    def groups(model):
        return [{"params": [model[0].weight], "weight_decay": 0.1},
                {"params": [model[0].bias, *model[2].parameters()], "weight_decay": 0.0}]

    train_regression(ours_model, AdamW(groups(ours_model), lr=1e-2))
    train_regression(twin, torch.optim.AdamW(groups(twin), lr=1e-2))
    assert optimization._KERNEL.usable and optimization._KERNEL._step is not None
    assert max_parameter_difference(ours_model, twin) <= 1e-6


# Sizes around the kernel's split of the numbers between threads (multiples of 16), below and above it.
KERNEL_SHAPES = [(256, 256), (3,), (17,), (300, 7), (1,), (64, 65), (1000,)]


def kernel_parameters(seed):
    generator = torch.Generator().manual_seed(seed)
    return [nn.Parameter(torch.randn(shape, generator=generator)) for shape in KERNEL_SHAPES]


def step_with_random_gradients(optimizers_and_params, steps=5, skip_step=2, skipped=3):
    """Give every copy the same random gradients (not a model's, so that each step compares the update
    alone) and step; at `skip_step` one parameter sits out, so its bias correction lags the others'."""
    generator = torch.Generator().manual_seed(3)
    for step in range(steps):
        gradients = [torch.randn(shape, generator=generator) for shape in KERNEL_SHAPES]
        for optimizer, params in optimizers_and_params:
            for param, gradient in zip(params, gradients):
                param.grad = None if step == skip_step and param is params[skipped] else gradient.clone()
            optimizer.step()


def groups_of_one(params):  # every tensor its own learning rate and weight decay
    return [{"params": [param], "lr": 1e-3 * (index + 1), "weight_decay": 0.05 * index} for index, param in enumerate(params)]


def test_adamw_c_kernel_with_a_rate_per_tensor_and_skipped_steps_equals_torch_adamw():
    ours_params, torch_params = kernel_parameters(0), kernel_parameters(0)
    step_with_random_gradients([(AdamW(groups_of_one(ours_params)), ours_params),
                                (torch.optim.AdamW(groups_of_one(torch_params)), torch_params)])
    assert optimization._KERNEL.usable
    assert max((a - b).abs().max().item() for a, b in zip(ours_params, torch_params)) <= 1e-6


@pytest.mark.parametrize("threads", [2, 3])
def test_adamw_c_kernel_gives_the_same_bits_on_any_number_of_threads(threads):
    one_thread, several = kernel_parameters(1), kernel_parameters(1)
    step_with_random_gradients([(AdamW(groups_of_one(one_thread)), one_thread)])
    torch.set_num_threads(threads)
    try:
        step_with_random_gradients([(AdamW(groups_of_one(several)), several)])
    finally:
        torch.set_num_threads(1)
    assert all(torch.equal(a, b) for a, b in zip(one_thread, several))


def test_adamw_c_kernel_tells_autograd_the_parameters_changed():
    param = nn.Parameter(torch.ones(5))
    param.grad = torch.ones(5)
    version = param._version
    AdamW([param], lr=0.1).step()
    assert optimization._KERNEL.usable
    assert param._version > version


@pytest.fixture
def fresh_kernel(monkeypatch, tmp_path):
    """A kernel cache of its own and no kernel loaded yet (the loaded one comes back afterwards)."""
    monkeypatch.setenv("MINBERT_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(optimization, "_KERNEL", optimization._KernelUpdate())
    kernels.load.cache_clear()
    yield tmp_path
    kernels.load.cache_clear()


def test_adamw_falls_back_to_the_foreach_update_with_a_warning_when_no_compiler_builds_the_kernel(
        fresh_kernel, monkeypatch):
    monkeypatch.setenv("CC", "false")  # a "compiler" that fails every build
    ours_model = wide_linear_model()
    twin = copy.deepcopy(ours_model)
    with pytest.warns(UserWarning, match="cannot build the C kernel adamw.c"):
        train_regression(ours_model, AdamW(ours_model.parameters(), lr=1e-2))
    train_regression(twin, torch.optim.AdamW(twin.parameters(), lr=1e-2))
    assert not optimization._KERNEL.usable
    assert list(fresh_kernel.iterdir()) == []  # no half-built library left in the cache
    assert max_parameter_difference(ours_model, twin) <= 1e-6


def test_kernel_is_built_once_into_the_cache_and_named_for_the_cpu(fresh_kernel, monkeypatch):
    assert kernels.load("adamw") is not None
    (library,) = fresh_kernel.iterdir()
    assert library.name.startswith("adamw-")
    built_at = library.stat().st_mtime_ns
    kernels.load.cache_clear()
    assert kernels.load("adamw") is not None
    assert list(fresh_kernel.iterdir()) == [library] and library.stat().st_mtime_ns == built_at  # reused, not rebuilt

    monkeypatch.setattr(kernels, "_cpu_identity", lambda: "another CPU")
    kernels.load.cache_clear()
    assert kernels.load("adamw") is not None
    assert len(list(fresh_kernel.iterdir())) == 2  # a machine never loads a library built for another CPU


def test_adamw_with_use_kernel_false_never_calls_the_kernel(monkeypatch):
    def no_kernel(updates):
        raise AssertionError("the kernel ran")

    monkeypatch.setattr(optimization._KERNEL, "run", no_kernel)
    ours_model, twin = wide_linear_model(), wide_linear_model()
    train_regression(ours_model, AdamW(ours_model.parameters(), lr=1e-2, use_kernel=False))
    train_regression(twin, torch.optim.AdamW(twin.parameters(), lr=1e-2))
    assert max_parameter_difference(ours_model, twin) <= 1e-6


def test_adamw_rejects_sparse_gradients_with_a_clear_error():
    embedding = nn.Embedding(10, 4, sparse=True)
    optimizer = AdamW(embedding.parameters())
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        optimizer.step()


def test_adamw_resumes_from_a_saved_state_dict_exactly(bert_classifier):
    resumed = copy.deepcopy(bert_classifier)
    batches = random_batches(10)
    train(bert_classifier, AdamW(llrd_groups(bert_classifier)), batches)

    first_half = AdamW(llrd_groups(resumed))
    train(resumed, first_half, batches[:5])
    checkpoint = io.BytesIO()
    torch.save(first_half.state_dict(), checkpoint)  # as Trainer saves optimizer.pt
    checkpoint.seek(0)
    second_half = AdamW(llrd_groups(resumed))
    second_half.load_state_dict(torch.load(checkpoint, weights_only=True))
    train(resumed, second_half, batches[5:])

    assert max_parameter_difference(bert_classifier, resumed) == 0.0


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(lr=-1e-3), "lr must be >= 0"),
        (dict(betas=(1.0, 0.999)), r"betas\[0\]"),
        (dict(betas=(0.9, -0.1)), r"betas\[1\]"),
        (dict(eps=-1.0), "eps"),
        (dict(weight_decay=-0.1), "weight_decay"),
    ],
)
def test_adamw_rejects_bad_hyperparameters(bad, message):
    with pytest.raises(ValueError, match=message):
        AdamW([nn.Parameter(torch.zeros(2))], **bad)


def test_adamw_names_the_param_group_with_a_bad_learning_rate():
    with pytest.raises(ValueError, match="'layer_0/decay'"):
        AdamW([{"name": "layer_0/decay", "params": [nn.Parameter(torch.zeros(2))], "lr": -1.0}])


@pytest.mark.parametrize("option", ["amsgrad", "maximize", "capturable", "differentiable"])
def test_adamw_refuses_a_param_group_asking_for_a_torch_option_it_does_not_implement(option):
    with pytest.raises(ValueError, match=f"'heads': {option}=True is not supported"):
        AdamW([{"name": "heads", "params": [nn.Parameter(torch.zeros(2))], option: True}])


def test_adamw_accepts_torch_options_left_at_their_defaults():
    AdamW([{"params": [nn.Parameter(torch.zeros(2))], "amsgrad": False, "maximize": False}])


# ---------------------------------------------------------------------------------------------------------
# Parameter groups
# ---------------------------------------------------------------------------------------------------------


def test_llrd_group_learning_rates_match_hand_computed_values(bert_classifier):
    groups = build_parameter_groups(bert_classifier, lr=1e-3, layerwise_lr_decay=0.9, head_lr_multiplier=1.5)
    expected = {  # 3 layers: top layer 2 and the pooler get lr; each step toward the input multiplies by 0.9
        "embeddings": 7.29e-4,
        "layer_0": 8.1e-4,
        "layer_1": 9e-4,
        "layer_2": 1e-3,
        "pooler": 1e-3,
        "heads": 1.5e-3,
    }
    for group in groups:
        part = group["name"].split("/")[0]
        assert group["lr"] == pytest.approx(expected[part], rel=1e-12), group["name"]
    assert {group["name"].split("/")[0] for group in groups} == set(expected)


def test_groups_are_ordered_from_the_input_upward_with_readable_names(bert_classifier):
    names = [group["name"] for group in build_parameter_groups(bert_classifier, lr=1e-3)]
    assert names == [
        "embeddings/decay", "embeddings/no_decay",
        "layer_0/decay", "layer_0/no_decay",
        "layer_1/decay", "layer_1/no_decay",
        "layer_2/decay", "layer_2/no_decay",
        "pooler/decay", "pooler/no_decay",
        "heads/decay", "heads/no_decay",
    ]  # fmt: skip


def test_without_decay_every_group_has_the_base_learning_rate(bert_classifier):
    groups = build_parameter_groups(bert_classifier, lr=2e-5)
    assert {group["lr"] for group in groups} == {2e-5}


def test_biases_and_layernorm_get_no_weight_decay(bert_classifier):
    groups = build_parameter_groups(bert_classifier, lr=1e-3, weight_decay=0.01)
    for group in groups:
        decays = group["name"].endswith("/decay")
        assert group["weight_decay"] == (0.01 if decays else 0.0), group["name"]
        for name in group["param_names"]:
            exempt = name.endswith(".bias") or ".LayerNorm." in name
            assert exempt != decays, name


def test_scalar_parameters_and_oddly_named_layernorms_get_no_weight_decay(multitask_model):
    multitask_model.heads["sst"].add_module("norm", nn.LayerNorm(4))
    multitask_model.heads["sst"].register_parameter("scale", nn.Parameter(torch.tensor(20.0)))
    groups = build_parameter_groups(multitask_model, lr=1e-3, weight_decay=0.01)
    no_decay = {name for group in groups if group["weight_decay"] == 0.0 for name in group["param_names"]}
    assert {"heads.sst.norm.weight", "heads.sst.norm.bias", "heads.sst.scale"} <= no_decay


def test_bi_encoder_cosine_head_scale_and_threshold_get_no_weight_decay():
    config = MinBertConfig(
        vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        tasks={"para": {"kind": "binary", "labels": ["no", "yes"], "pair_encoding": "bi"}}, default_task="para",
    )  # fmt: skip
    model = MinBertForMultitask(config)
    groups = {group["name"]: group for group in build_parameter_groups(model, lr=1e-3, weight_decay=0.01)}
    scalars = ["heads.para.cosine_logit.scale", "heads.para.cosine_logit.threshold"]
    assert groups["heads/no_decay"]["param_names"] == scalars
    assert "heads/decay" not in groups


def test_head_multiplier_applies_to_heads_only(bert_classifier):
    lrs = lrs_by_name(build_parameter_groups(bert_classifier, lr=1e-5, head_lr_multiplier=1.5))
    assert lrs["heads/decay"] == lrs["heads/no_decay"] == pytest.approx(1.5e-5)
    assert {lr for name, lr in lrs.items() if not name.startswith("heads/")} == {1e-5}


def test_frozen_embeddings_are_left_out_and_do_not_require_grad(bert_classifier):
    groups = build_parameter_groups(bert_classifier, lr=1e-3, freeze_embeddings=True)
    for name, param in bert_classifier.named_parameters():
        frozen = name.startswith("bert.embeddings.")
        assert param.requires_grad != frozen, name
        assert (name in grouped_names(groups)) != frozen, name


def test_frozen_encoder_trains_only_the_heads(bert_classifier):
    groups = build_parameter_groups(bert_classifier, lr=1e-3, freeze_encoder=True)
    assert sorted(grouped_names(groups)) == ["classifier.bias", "classifier.weight"]
    assert not any(p.requires_grad for name, p in bert_classifier.named_parameters() if name.startswith("bert."))


def test_frozen_encoder_leaves_the_optimizer_only_head_parameters(bert_classifier):
    optimizer = create_optimizer(bert_classifier, lr=1e-3, freeze_encoder=True)
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in bert_classifier.classifier.parameters()}


def test_parameters_frozen_beforehand_stay_out_of_the_groups(bert_classifier):
    bert_classifier.bert.pooler.dense.weight.requires_grad_(False)
    groups = build_parameter_groups(bert_classifier, lr=1e-3)
    assert "bert.pooler.dense.weight" not in grouped_names(groups)
    assert not bert_classifier.bert.pooler.dense.weight.requires_grad


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(weight_decay=0.01, layerwise_lr_decay=0.95, head_lr_multiplier=1.5),
        dict(freeze_embeddings=True),
        dict(freeze_encoder=True),
    ],
)
@pytest.mark.parametrize("model_fixture", ["bert_classifier", "multitask_model"])
def test_every_trainable_parameter_is_in_exactly_one_group(model_fixture, options, request):
    model = request.getfixturevalue(model_fixture)
    groups = build_parameter_groups(model, lr=1e-3, **options)
    grouped = [id(p) for group in groups for p in group["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)
    assert len(set(grouped)) == len(grouped)
    for group in groups:
        named = dict(model.named_parameters())
        assert [id(p) for p in group["params"]] == [id(named[name]) for name in group["param_names"]]


def test_multitask_model_heads_share_the_head_learning_rate(multitask_model):
    groups = build_parameter_groups(multitask_model, lr=1e-3, layerwise_lr_decay=0.5, head_lr_multiplier=3.0)
    lrs = lrs_by_name(groups)
    # tiny_config has 2 layers: embeddings 0.25, layer_0 0.5, layer_1 and pooler 1, heads 3 (times lr)
    assert lrs["embeddings/decay"] == pytest.approx(2.5e-4)
    assert lrs["layer_0/decay"] == pytest.approx(5e-4)
    assert lrs["layer_1/decay"] == lrs["pooler/decay"] == pytest.approx(1e-3)
    head_names = [n for g in groups if g["name"].startswith("heads/") for n in g["param_names"]]
    assert {name.split(".")[1] for name in head_names} == {"sst", "para", "sts"}
    assert lrs["heads/decay"] == lrs["heads/no_decay"] == pytest.approx(3e-3)


def test_bare_encoder_has_no_head_groups():
    torch.manual_seed(0)
    encoder = BertModel(tiny_bert_config())
    parts = {group["name"].split("/")[0] for group in build_parameter_groups(encoder, lr=1e-3)}
    assert parts == {"embeddings", "layer_0", "layer_1", "layer_2", "pooler"}


def test_layer_count_is_inferred_from_names_when_the_model_has_no_config():
    class Wrapper(nn.Module):
        base_model_prefix = "bert"

        def __init__(self):
            super().__init__()
            self.bert = BertModel(tiny_bert_config())
            self.head = nn.Linear(16, 2)

    lrs = lrs_by_name(build_parameter_groups(Wrapper(), lr=1.0, layerwise_lr_decay=0.5))
    assert lrs["embeddings/decay"] == 0.125 and lrs["layer_2/decay"] == 1.0


def test_config_layer_count_disagreeing_with_the_parameters_is_an_error(bert_classifier):
    bert_classifier.config.num_hidden_layers = 5
    with pytest.raises(ValueError, match="num_hidden_layers=5"):
        build_parameter_groups(bert_classifier, lr=1e-3)


def test_unknown_encoder_parameter_is_an_error_naming_it(bert_classifier):
    bert_classifier.bert.extra = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="bert.extra.weight"):
        build_parameter_groups(bert_classifier, lr=1e-3)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(layerwise_lr_decay=0.0), "layerwise_lr_decay"),
        (dict(layerwise_lr_decay=-0.5), "layerwise_lr_decay"),
        (dict(layerwise_lr_decay=1.05), "layerwise_lr_decay"),
        (dict(lr=-1e-5), "lr must be >= 0"),
        (dict(head_lr_multiplier=0.0), "head_lr_multiplier"),
        (dict(weight_decay=-0.01), "weight_decay"),
    ],
)
def test_bad_group_arguments_raise_value_error(bert_classifier, bad, message):
    with pytest.raises(ValueError, match=message):
        build_parameter_groups(bert_classifier, **{"lr": 1e-3, **bad})


def test_bad_arguments_freeze_nothing(bert_classifier):
    with pytest.raises(ValueError):
        build_parameter_groups(bert_classifier, lr=-1.0, freeze_encoder=True)
    assert all(p.requires_grad for p in bert_classifier.parameters())


def test_freezing_the_whole_bare_encoder_is_an_error():
    with pytest.raises(ValueError, match="nothing to train"):
        build_parameter_groups(BertModel(tiny_bert_config()), lr=1e-3, freeze_encoder=True)


# ---------------------------------------------------------------------------------------------------------
# create_optimizer
# ---------------------------------------------------------------------------------------------------------


def test_create_optimizer_uses_ours_by_default_and_torch_on_request(bert_classifier):
    assert type(create_optimizer(bert_classifier, lr=1e-3)) is AdamW
    torch_optimizer = create_optimizer(copy.deepcopy(bert_classifier), lr=1e-3, use_torch_adamw=True)
    assert type(torch_optimizer) is torch.optim.AdamW


def test_create_optimizer_passes_betas_and_eps_to_every_group(bert_classifier):
    optimizer = create_optimizer(bert_classifier, lr=1e-3, layerwise_lr_decay=0.9, betas=(0.8, 0.99), eps=1e-6)
    assert {(group["betas"], group["eps"]) for group in optimizer.param_groups} == {((0.8, 0.99), 1e-6)}


def test_describe_parameter_groups_lists_each_group_with_its_lr(bert_classifier):
    text = describe_parameter_groups(create_optimizer(bert_classifier, lr=1e-3, layerwise_lr_decay=0.5))
    assert "embeddings/decay" in text and "lr=1.250e-04" in text
    assert len(text.splitlines()) == 12
