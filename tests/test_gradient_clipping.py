"""trainers.gradient_clipping: torch's gradient clipping in fewer passes over memory on a CPU."""
import pytest
import torch
from transformers import AutoTokenizer

from tests.helpers import tiny_model, tiny_task_rows
from trainers import MultitaskTrainer, MultitaskTrainingArguments, gradient_clipping
from trainers.gradient_clipping import clip_grad_norm_


def _parameters_with_gradients(seed=0, scale=1.0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    parameters = [torch.nn.Parameter(torch.zeros(shape, dtype=dtype)) for shape in [(7, 5), (64,), (3, 4, 5), (1,)]]
    for parameter in parameters:
        parameter.grad = (torch.randn(parameter.shape, generator=generator) * scale).to(dtype)
    return parameters


def _clipped_by_torch(parameters, max_norm):
    twins = [torch.nn.Parameter(parameter.detach().clone()) for parameter in parameters]
    for twin, parameter in zip(twins, parameters):
        twin.grad = parameter.grad.clone()
    return torch.nn.utils.clip_grad_norm_(twins, max_norm), [twin.grad for twin in twins]


def test_the_norm_and_the_clipped_gradients_are_torchs():
    parameters = _parameters_with_gradients(scale=3.0)
    expected_norm, expected_grads = _clipped_by_torch(parameters, max_norm=1.0)
    norm = clip_grad_norm_(parameters, max_norm=1.0)
    assert norm.dtype == torch.float32 and norm.ndim == 0
    torch.testing.assert_close(norm, expected_norm, rtol=1e-6, atol=0)
    for parameter, expected in zip(parameters, expected_grads):
        torch.testing.assert_close(parameter.grad, expected, rtol=1e-6, atol=0)
    assert clip_grad_norm_(parameters, max_norm=1.0).item() == pytest.approx(1.0, rel=1e-5)


def test_gradients_within_the_max_norm_are_left_as_they_are_bit_for_bit():
    parameters = _parameters_with_gradients()
    before = [parameter.grad.clone() for parameter in parameters]
    clip_grad_norm_(parameters, max_norm=1e6)
    clip_grad_norm_(parameters, max_norm=float("inf"))
    assert all(torch.equal(parameter.grad, grad) for parameter, grad in zip(parameters, before))


def test_the_norm_of_millions_of_numbers_is_within_1e_5_of_the_exact_norm():
    grads = torch.randn(3_000_000, generator=torch.Generator().manual_seed(1)).split([1_000_000, 2_000_000])
    parameters = [torch.nn.Parameter(torch.zeros_like(grad)) for grad in grads]
    for parameter, grad in zip(parameters, grads):
        parameter.grad = grad.clone()
    exact = sum(grad.double().square().sum() for grad in grads).sqrt().item()
    assert clip_grad_norm_(parameters, max_norm=float("inf")).item() == pytest.approx(exact, rel=1e-5)


def test_a_nan_gradient_makes_every_gradient_nan_as_torchs_clipping_does():
    parameters = _parameters_with_gradients()
    parameters[1].grad[3] = float("nan")
    assert clip_grad_norm_(parameters, max_norm=1.0).isnan()
    assert all(parameter.grad.isnan().all() for parameter in parameters)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # the fast path, and torch's
def test_an_infinite_max_norm_only_measures_the_norm_even_of_infinite_gradients(dtype):
    parameters = _parameters_with_gradients(dtype=dtype)  # Trainer measures so with --max_grad_norm 0, to log it
    parameters[1].grad[3] = float("inf")
    before = [parameter.grad.clone() for parameter in parameters]
    assert clip_grad_norm_(parameters, max_norm=float("inf")).isinf()
    assert all(torch.equal(parameter.grad, grad) for parameter, grad in zip(parameters, before))


def test_parameters_without_gradients_are_left_out_and_a_single_tensor_is_taken():
    parameters = _parameters_with_gradients()
    parameters[0].grad = None
    expected_norm, _ = _clipped_by_torch(parameters[1:], max_norm=1e6)
    torch.testing.assert_close(clip_grad_norm_(parameters, max_norm=1e6), expected_norm, rtol=1e-6, atol=0)
    torch.testing.assert_close(clip_grad_norm_(parameters[2], max_norm=1e6), parameters[2].grad.norm())


@pytest.mark.parametrize("odd_one_out", ["bfloat16", "non_contiguous", "none_at_all"])
def test_gradients_the_fast_path_does_not_read_take_torchs_own_function(monkeypatch, odd_one_out):
    parameters = _parameters_with_gradients(dtype=torch.bfloat16 if odd_one_out == "bfloat16" else torch.float32)
    if odd_one_out == "non_contiguous":
        parameters[0].grad = torch.randn(5, 7).t()
    if odd_one_out == "none_at_all":
        for parameter in parameters:
            parameter.grad = None
    calls = []
    torch_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *args: calls.append(args) or torch_clip(*args))
    clip_grad_norm_(parameters, max_norm=1.0)
    assert len(calls) == 1


def _train_three_steps(tmp_path, tokenizer):
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=8,
                                      logging_steps=1, report_to="none", save_strategy="no", eval_strategy="no", use_cpu=True,
                                      seed=0, learning_rate=1e-3, max_seq_length=32, disable_tqdm=True, bf16=False,
                                      max_grad_norm=1e-3)
    trainer = MultitaskTrainer(model=tiny_model(), args=args, train_dataset=tiny_task_rows(), processing_class=tokenizer)
    trainer.train()
    return [entry["grad_norm"] for entry in trainer.state.log_history if "grad_norm" in entry], trainer.model


@pytest.mark.slow
def test_multitask_trainer_clips_through_the_fast_path_to_torchs_norms_and_weights(tmp_path, minilm_path, monkeypatch):
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    calls = []
    fast_clip = gradient_clipping.clip_grad_norm_
    monkeypatch.setattr("trainers.trainer.clip_grad_norm_", lambda *args: calls.append(args) or fast_clip(*args))
    norms, model = _train_three_steps(tmp_path / "fast", tokenizer)
    assert len(calls) == 3 and len(norms) == 3 and all(norm > 1e-3 for norm in norms)  # each step clipped
    monkeypatch.setattr(MultitaskTrainer, "_clips_as_torch", lambda self, model: False)
    torch_norms, torch_model = _train_three_steps(tmp_path / "torch", tokenizer)
    assert len(calls) == 3
    assert norms == pytest.approx(torch_norms, rel=1e-5)
    for (name, weight), torch_weight in zip(model.state_dict().items(), torch_model.state_dict().values()):
        torch.testing.assert_close(weight, torch_weight, rtol=1e-4, atol=1e-6, msg=name)
