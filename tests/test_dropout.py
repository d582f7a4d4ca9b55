"""minBERT's dropout: torch's semantics, from a cheaper CPU mask."""
import pytest
import torch

from hf_minbert import MinBertConfig, MinBertModel
from hf_minbert.modeling_minbert_layers import MinBertDropout, dropout
from tests.helpers import random_batch


def test_cpu_dropout_drops_a_share_p_and_scales_the_kept_values():
    torch.manual_seed(0)
    ones = torch.ones(400_000)
    out = dropout(ones, 0.1)
    kept = out != 0
    assert abs(1 - kept.float().mean().item() - 0.1) < 3e-3  # 0.1 ± 3 standard deviations of 400k draws
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / 0.9))


def test_cpu_dropout_mask_decisions_are_independent_of_the_neighbours():
    """Four elements share one 64-bit draw: each gets its own 16 bits, so neighbours are uncorrelated."""
    torch.manual_seed(1)
    kept = (dropout(torch.ones(400_000), 0.5) != 0).float()
    correlation = torch.corrcoef(torch.stack([kept[:-1], kept[1:]]))[0, 1]
    assert abs(correlation.item()) < 0.01


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_dropout_keeps_shape_and_dtype(dtype):
    hidden = torch.randn(3, 5, 7, dtype=dtype)
    out = dropout(hidden, 0.3)
    assert out.shape == hidden.shape and out.dtype == dtype
    kept = out != 0
    torch.testing.assert_close(out[kept], (hidden[kept] / 0.7).to(dtype))


def test_cpu_dropout_replays_under_the_same_seed():
    hidden = torch.randn(1000)
    torch.manual_seed(3)
    first = dropout(hidden, 0.2)
    torch.manual_seed(3)
    torch.testing.assert_close(dropout(hidden, 0.2), first, rtol=0, atol=0)


def test_cpu_dropout_gradient_is_the_scaled_mask():
    hidden = torch.randn(64, requires_grad=True)
    out = dropout(hidden, 0.25)
    out.sum().backward()
    expected = (out != 0).float() / 0.75
    torch.testing.assert_close(hidden.grad, expected)


def test_dropout_is_the_identity_in_eval_mode_and_at_p_zero():
    hidden = torch.randn(10)
    assert dropout(hidden, 0.5, training=False) is hidden
    assert dropout(hidden, 0.0) is hidden
    module = MinBertDropout(0.5).eval()
    assert module(hidden) is hidden


def test_dropout_of_one_drops_everything():
    assert dropout(torch.randn(10), 1.0).abs().sum() == 0


def test_train_mode_attention_computes_what_sdpa_computes_when_nothing_is_dropped(tiny_config):
    """On CPU with attention dropout, training takes the explicit product; a drop rate that rounds to zero
    keeps every weight, so it must give the eval-mode (SDPA) outputs."""
    config = MinBertConfig(**{**tiny_config.to_dict(), "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 1e-9})
    model = MinBertModel(config)
    batch = random_batch(config, batch=4, length=12)
    with torch.no_grad():
        training = model.train()(**batch).last_hidden_state
        evaluation = model.eval()(**batch).last_hidden_state
    keep = batch["attention_mask"].bool()
    torch.testing.assert_close(training[keep], evaluation[keep], rtol=0, atol=1e-5)


def test_train_mode_attention_on_cpu_does_not_call_sdpa(tiny_config, monkeypatch):
    model = MinBertModel(tiny_config).train()

    def no_sdpa(*args, **kwargs):
        raise AssertionError("training with attention dropout on CPU called scaled_dot_product_attention")

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", no_sdpa)
    model(**random_batch(tiny_config, batch=3, length=9))
