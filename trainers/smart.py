"""SMART: smoothness-inducing adversarial regularization (Jiang et al., ACL 2020, arXiv 1911.03437).

Training minimises  L(θ) + λ_s·R_s(θ) [+ μ·D_Breg(θ, θ̃)]  with

    R_s(θ) = mean_i  max_{‖x̃_i − x_i‖_p ≤ ε}  ℓ_s(f(x̃_i; θ), f(x_i; θ))

where x_i are the *word* embeddings of example i. The inner max is approximated as in the paper's
Algorithm 1: x̃ = x + δ, δ ~ N(0, σ²I) (σ is a standard deviation, as in MT-DNN's `noise_var` which
multiplies N(0, 1)), then K steps  δ ← Π_ε(δ + η·g/‖g‖)  with g = ∇_δ ℓ_s and the norm taken per example
(ℓ∞: max-abs, the paper's choice; ℓ2: Euclidean). ℓ_s is the symmetric KL divergence for classification
(softmax for multi-class heads, Bernoulli for a single binary logit) and the squared error for regression.

Where this differs from the public implementations, on purpose:
- The perturbation is added to the word embeddings and passed as `inputs_embeds`, so position/type
  embeddings and LayerNorm are applied once. MT-DNN and smart-pytorch perturb the output of the embedding
  block (already LayerNorm'd) and feed it back in as `inputs_embeds`, normalising twice (MT-DNN #230).
- Π_ε is a real projection onto the ε-ball (ℓ∞: clamp; ℓ2: rescale to norm ≤ ε per example). The public
  code divides by the norm instead, so ε never bounds the perturbation (MT-DNN #214).
- Padding positions are never perturbed, and a bi-encoder pair is perturbed on both sentences, the pair
  being one example (one ℓ2 norm, one gradient normalisation).

Gradients. During the ascent the clean word embeddings and the clean logits f(x) are constants: only
δ is searched, and no parameter gradient is accumulated (`torch.autograd.grad` w.r.t. δ alone). The
final term follows the paper's objective literally: ℓ_s(f(x + δ*; θ), f(x; θ)) with δ* held fixed
(Danskin: the gradient of a max is the gradient at the maximiser), the word embeddings x live on the
perturbed side (the embedding table is trained through both sides, since x is a function of θ) and
the clean logits live too, so the gradient is the exact gradient of the symmetric divergence. (MT-DNN's
`SymKlCriterion` instead detaches the target distribution inside each KL direction; that is a different
gradient, not the paper's objective.)

Dropout. In train mode the perturbed forward draws fresh dropout masks (what the paper's released code
and smart-pytorch do), so ℓ_s also measures dropout noise, R-Drop-like. `dropout_masks="replay"` is the
exact definition instead: the caller captures the RNG state right before its clean forward
(`SmartRegularizer.capture_rng_state`) and every perturbed forward replays it, so both sides share the
same masks and ℓ_s measures the perturbation alone.

Precision. The adversarial passes run in fp32 even under bf16/fp16 autocast, and so does the clean
forward they are compared with (recomputed when the caller's came from autocast: one more forward). Under
bf16 the encoder's matmuls round their inputs to 8 mantissa bits, relative steps of 4e-3, while ε = 1e-5
moves a word embedding (scale ~0.05) by 2e-4 of itself: the perturbation would survive only as rounding
flips, a change of the logits that does not depend on ε. In fp32, ε is the radius the paper means.
The divergences are computed in fp32 too. The gaussian variant's σ = 0.05 is resolved by bf16 and stays
in the caller's precision.

Also here: seed 003's simplified variant (`variant="gaussian"`: one forward with N(0, σ²) noise on the
word embeddings, σ = 0.05 by default, mean squared difference of the logits, no ascent), and the Bregman
proximal point term μ·ℓ_s(f(x; θ), f(x; θ̃)) against a momentum copy θ̃ ← (1 − β)θ + βθ̃ (`MeanTeacher`).
"""

import contextlib
import copy
import math
from dataclasses import dataclass, field
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hf_minbert.data.tokenization import MODEL_INPUT_COLUMNS

VARIANTS = ("smart", "gaussian")
NORMS = ("linf", "l2")
DROPOUT_MASKS = ("fresh", "replay")
DEFAULT_NOISE_STD = {"smart": 1e-5, "gaussian": 0.05}

# What the model reads for each pair encoding: (ids, attention mask, inputs_embeds argument) per encoded
# sequence, and the other inputs passed through unchanged. `labels` is never passed to a perturbed forward.
SEQUENCES = {
    "single": (("input_ids", "attention_mask", "inputs_embeds"),),
    "cross": (("input_ids", "attention_mask", "inputs_embeds"),),
    "bi": (("input_ids_a", "attention_mask_a", "inputs_embeds_a"), ("input_ids_b", "attention_mask_b", "inputs_embeds_b")),
}
# A cross-encoder head with `cosine_feature` also reads each sentence alone: all three sequences are perturbed.
SEQUENCES["cross+sides"] = SEQUENCES["cross"] + SEQUENCES["bi"]
PASSED_THROUGH = {"single": ("token_type_ids",), "cross": ("token_type_ids",), "bi": (), "cross+sides": ("token_type_ids",)}



@dataclass
class SmartSettings:
    """SMART's hyperparameters (defaults: the paper's σ = ε = 1e-5, η = 1e-3, K = 1, ℓ∞).

    weights: λ_s per task ({"sst": 2, "para": 6, "sts": 8}), or one number for every task; a task absent
        from the dict gets 0 (no regularizer, no extra forward).
    steps: K projected gradient-ascent steps (smart variant; >= 1).
    step_size: η. epsilon: radius ε of the perturbation ball. norm: "linf" or "l2".
    noise_std: σ of the initial noise δ ~ N(0, σ²); None picks 1e-5 (smart) or 0.05 (gaussian, seed 003).
    variant: "smart" (adversarial) or "gaussian" (seed 003: noise only, MSE between the logits).
    dropout_masks: "fresh" (perturbed forwards draw their own dropout masks) or "replay" (they reuse the
        clean forward's masks; needs `capture_rng_state` before the clean forward).
    proximal_weight: μ of the Bregman proximal point term (0 = off; the paper uses 1).
    momentum: β of the mean-teacher update θ̃ ← (1 − β)θ + βθ̃ (paper: 0.99 for the first 10% of the
        updates, then 0.999; `MeanTeacher.beta_at` gives that schedule).
    """

    weights: Union[float, dict] = field(default_factory=dict)
    steps: int = 1
    step_size: float = 1e-3
    epsilon: float = 1e-5
    noise_std: Optional[float] = None
    norm: str = "linf"
    variant: str = "smart"
    dropout_masks: str = "fresh"
    proximal_weight: float = 0.0
    momentum: float = 0.999

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"SmartSettings.variant {self.variant!r}: choose one of {VARIANTS}")
        if self.norm not in NORMS:
            raise ValueError(f"SmartSettings.norm {self.norm!r}: choose one of {NORMS}")
        if self.dropout_masks not in DROPOUT_MASKS:
            raise ValueError(f"SmartSettings.dropout_masks {self.dropout_masks!r}: choose one of {DROPOUT_MASKS}")
        if self.noise_std is None:
            self.noise_std = DEFAULT_NOISE_STD[self.variant]
        if self.variant == "smart" and self.steps < 1:
            raise ValueError(f"SmartSettings.steps must be >= 1, got {self.steps}")
        for name in ("step_size", "epsilon"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SmartSettings.{name} must be > 0, got {getattr(self, name)}")
        if not self.noise_std >= 0:
            raise ValueError(f"SmartSettings.noise_std must be >= 0, got {self.noise_std}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"SmartSettings.momentum (β) must lie in [0, 1), got {self.momentum}")
        _check_weight("proximal_weight", self.proximal_weight)
        if isinstance(self.weights, dict):
            for task, weight in self.weights.items():
                _check_weight(f"weights[{task!r}]", weight)
        else:
            _check_weight("weights", self.weights)

    def weight_for(self, task: str) -> float:
        if isinstance(self.weights, dict):
            return float(self.weights.get(task, 0.0))
        return float(self.weights)


def _check_weight(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"SmartSettings.{name} must be a finite number >= 0, got {value!r}")


# ----------------------------------------------------------------------------------------------------------
# Divergences ℓ_s (per example, fp32)
# ----------------------------------------------------------------------------------------------------------


def symmetric_kl_categorical(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(P‖Q) + KL(Q‖P) of softmax distributions, per row: Σ_c (p_c − q_c)(log p_c − log q_c)."""
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(dim=-1)


def symmetric_kl_bernoulli(logit_p: Tensor, logit_q: Tensor) -> Tensor:
    """KL(P‖Q) + KL(Q‖P) of Bernoulli(sigmoid(logit)) distributions: (σ(a) − σ(b))·(a − b) exactly,
    since log(p/(1−p)) is the logit itself; no log of a probability near 0 or 1 is ever taken."""
    a, b = logit_p.float(), logit_q.float()
    return (torch.sigmoid(a) - torch.sigmoid(b)) * (a - b)


def squared_error(prediction_p: Tensor, prediction_q: Tensor) -> Tensor:
    """(p − q)², per example (regression heads predict on the label scale)."""
    return (prediction_p.float() - prediction_q.float()).pow(2)


DIVERGENCES = {"classification": symmetric_kl_categorical, "binary": symmetric_kl_bernoulli, "regression": squared_error}


def smoothness_divergence(kind: str, outputs_p: Tensor, outputs_q: Tensor) -> Tensor:
    """ℓ_s for a task kind, averaged over the batch, in fp32 even under autocast."""
    if kind not in DIVERGENCES:
        raise ValueError(f"unknown task kind {kind!r}: expected one of {sorted(DIVERGENCES)}")
    with torch.autocast(outputs_p.device.type, enabled=False):
        return DIVERGENCES[kind](outputs_p, outputs_q).mean()


def logit_mse(outputs_p: Tensor, outputs_q: Tensor) -> Tensor:
    """Seed 003's regularizer: the mean over all logits of the squared difference, in fp32."""
    with torch.autocast(outputs_p.device.type, enabled=False):
        return (outputs_p.float() - outputs_q.float()).pow(2).mean()


# ----------------------------------------------------------------------------------------------------------
# Perturbation geometry. A perturbation is a list of (B, L_k, H) parts (two for a bi-encoder pair); norms
# are taken per example over all parts together.
# ----------------------------------------------------------------------------------------------------------


def per_example_norm(parts: list, norm: str) -> Tensor:
    """(B,) ℓ∞ or ℓ2 norm of each example's perturbation across all its parts."""
    if norm == "linf":
        return torch.stack([p.flatten(1).abs().amax(dim=1) for p in parts]).amax(dim=0)
    if norm == "l2":
        return torch.stack([p.flatten(1).pow(2).sum(dim=1) for p in parts]).sum(dim=0).sqrt()
    raise ValueError(f"unknown norm {norm!r}: expected one of {NORMS}")


def normalize_per_example(parts: list, norm: str) -> list:
    """Each example divided by its norm (a zero gradient stays zero instead of becoming NaN)."""
    scale = per_example_norm(parts, norm)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return [p / scale.view(-1, *([1] * (p.dim() - 1))) for p in parts]


def project_to_ball(parts: list, epsilon: float, norm: str) -> list:
    """Euclidean projection of each example onto {δ : ‖δ‖ ≤ ε}: clamp for ℓ∞, shrink to radius ε for ℓ2."""
    if norm == "linf":
        return [p.clamp(-epsilon, epsilon) for p in parts]
    if norm == "l2":
        lengths = per_example_norm(parts, norm)
        factor = (epsilon / lengths.clamp_min(torch.finfo(lengths.dtype).tiny)).clamp(max=1.0)
        return [p * factor.view(-1, *([1] * (p.dim() - 1))) for p in parts]
    raise ValueError(f"unknown norm {norm!r}: expected one of {NORMS}")


# ----------------------------------------------------------------------------------------------------------
# The regularizer
# ----------------------------------------------------------------------------------------------------------


@dataclass
class RngState:
    """The generator states a forward pass draws its dropout masks from."""

    cpu: Tensor
    cuda: Optional[Tensor] = None
    device: Optional[torch.device] = None


@dataclass
class SmartStats:
    """Counters and the last values, for logging. Values are detached tensors (no device sync here)."""

    computed: int = 0  # batches whose regularizer was computed (λ_s > 0 or μ > 0)
    skipped_nonfinite: int = 0  # of those, batches whose adversarial loss or gradient was NaN/Inf
    last_smart_loss: Optional[Tensor] = None  # unweighted R_s (or seed 003's MSE) of the last batch
    last_proximal_loss: Optional[Tensor] = None  # unweighted D_Breg of the last batch
    last_perturbation: Optional[tuple] = None  # the final δ parts of the last batch, for inspection


class SmartRegularizer:
    """`regularizer(model, inputs, task, clean_logits)` -> λ_s·R_s + μ·D_Breg for one task's batch.

    `inputs` is the batch the clean forward read (`input_ids`, `attention_mask`, `token_type_ids`, or the
    `_a`/`_b` groups of a bi-encoder task; `labels` and other keys are ignored); `clean_logits` are that
    forward's logits, still attached to the graph. Returns a 0-dim fp32 tensor; it is a constant zero
    (no grad, no forward pass run) when λ_s = 0 and μ = 0 for the task, when gradients are disabled
    (evaluation: the regularizer belongs to the training objective only), and when the adversarial loss or
    its gradient is not finite (counted in `stats.skipped_nonfinite`).

    `model` should be the unwrapped model (not the DDP wrapper): its extra forwards then skip DDP's
    bookkeeping and their gradients still reach the same parameters before the one all-reduce.
    With `proximal_weight > 0`, pass the model at construction: the mean teacher starts from θ0 and must
    be moved after every optimizer step with `regularizer.teacher.update(model)`.
    """

    def __init__(self, settings: SmartSettings, model: Optional[nn.Module] = None):
        self.settings = settings
        self.stats = SmartStats()
        self.teacher = None
        if settings.proximal_weight > 0:
            if model is None:
                raise ValueError("SmartRegularizer: proximal_weight > 0 needs the model at construction (the mean teacher copies θ0)")
            self.teacher = MeanTeacher(model, beta=settings.momentum)

    def capture_rng_state(self, device) -> Optional[RngState]:
        """Call right before the clean forward; pass the result as `rng_state`. None unless the settings
        ask for replayed dropout masks, so callers may call it unconditionally."""
        if self.settings.dropout_masks != "replay":
            return None
        device = torch.device(device)
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return RngState(cpu=torch.get_rng_state(), cuda=cuda, device=device)

    def __call__(self, model, inputs: dict, task: str, clean_logits: Tensor, rng_state: Optional[RngState] = None) -> Tensor:
        config = model.config
        self._check_tasks(config)
        weight, mu = self.settings.weight_for(task), self.settings.proximal_weight
        zero = torch.zeros((), dtype=torch.float32, device=clean_logits.device)
        if (weight == 0 and mu == 0) or not torch.is_grad_enabled():
            return zero
        if self.settings.dropout_masks == "replay" and rng_state is None and model.training:
            raise ValueError("SmartSettings.dropout_masks='replay' needs rng_state=capture_rng_state(device) taken right before the clean forward")
        spec = config.task_spec(task)
        self.stats.computed += 1
        total = zero
        if weight > 0:
            term = self._smoothness_term(model, inputs, task, spec, clean_logits, rng_state)
            if term is None:
                self.stats.skipped_nonfinite += 1
                return zero
            self.stats.last_smart_loss = term.detach()
            total = total + weight * term
        if mu > 0:
            proximal = self.teacher.divergence(inputs, task, clean_logits, spec["kind"])
            if not _all_finite(proximal):
                self.stats.skipped_nonfinite += 1
                return zero
            self.stats.last_proximal_loss = proximal.detach()
            total = total + mu * proximal
        return total

    def _check_tasks(self, config):
        if isinstance(self.settings.weights, dict):
            unknown = sorted(set(self.settings.weights) - set(config.tasks))
            if unknown:
                raise ValueError(f"SmartSettings.weights names task(s) {unknown} that the model lacks; its tasks: {sorted(config.tasks)}")

    def _smoothness_term(self, model, inputs, task, spec, clean_logits, rng_state) -> Optional[Tensor]:
        """Unweighted R_s (or seed 003's MSE) with gradients to the parameters; None if not finite."""
        layout = "cross+sides" if spec.get("cosine_feature") else spec["pair_encoding"]
        batch = _PerturbableBatch(model, inputs, task, layout)
        settings = self.settings
        if settings.variant == "gaussian":  # σ = 0.05 is far above bf16's rounding: the caller's precision will do
            delta = batch.initial_noise(settings.noise_std)
            value = logit_mse(batch.forward(delta, rng_state), clean_logits)
        else:
            with _autocast_off(batch.model, clean_logits.device.type) as was_lowered:
                # The caller's clean logits are bf16/fp16 ones (the autocast wrapper may sit on an outer
                # module, e.g. a PeftModel, that this one cannot see): compare fp32 with fp32.
                if was_lowered or clean_logits.dtype in (torch.bfloat16, torch.float16):
                    clean_logits = batch.forward(None, rng_state)
                delta = self._ascend(batch, clean_logits.detach(), spec["kind"], rng_state)
                if delta is None:
                    return None
                value = smoothness_divergence(spec["kind"], batch.forward(delta, rng_state), clean_logits)
        self.stats.last_perturbation = tuple(delta)
        return value if _all_finite(value) else None

    def _ascend(self, batch, target_logits, kind, rng_state) -> Optional[list]:
        """K projected normalised-gradient ascent steps on ℓ_s from δ ~ N(0, σ²); None if not finite."""
        settings = self.settings
        delta = batch.initial_noise(settings.noise_std)
        for _ in range(settings.steps):
            delta = [d.requires_grad_() for d in delta]
            loss = smoothness_divergence(kind, batch.forward(delta, rng_state, constant_embeddings=True), target_logits)
            grads = torch.autograd.grad(loss, delta)
            if not _all_finite(loss, *grads):
                return None
            step = normalize_per_example(batch.mask(grads), settings.norm)
            moved = [d.detach() + settings.step_size * s for d, s in zip(delta, step)]
            delta = batch.mask(project_to_ball(moved, settings.epsilon, settings.norm))
        return delta


class _PerturbableBatch:
    """One task batch seen as word embeddings that a perturbation δ (one part per sequence) is added to."""

    def __init__(self, model, inputs, task, pair_encoding):
        self.model, self.task = model, task
        # The word table `inputs_embeds` stand for in this task (one per task in a Triple-BERT).
        task_table = getattr(model, "task_input_embeddings", None)
        word_embeddings = task_table(task) if task_table is not None else model.get_input_embeddings()
        self.arguments, self.embeddings, self.masks = [], [], []
        for ids_key, mask_key, embeds_key in SEQUENCES[pair_encoding]:
            if ids_key not in inputs:
                raise ValueError(f"SMART on task {task!r}: the batch lacks {ids_key!r} (it has {sorted(inputs)})")
            ids = inputs[ids_key]
            mask = inputs.get(mask_key)
            self.embeddings.append(word_embeddings(ids))  # live: the final term trains the table through x
            self.masks.append(torch.ones(ids.shape, device=ids.device) if mask is None else mask)
            self.arguments.append(embeds_key)
        self.masks = [m.unsqueeze(-1).to(e.dtype) for m, e in zip(self.masks, self.embeddings)]
        self.fixed = {key: inputs[key] for _, key, _ in SEQUENCES[pair_encoding] if inputs.get(key) is not None}
        self.fixed.update({key: inputs[key] for key in PASSED_THROUGH[pair_encoding] if inputs.get(key) is not None})

    def initial_noise(self, std) -> list:
        return self.mask([torch.randn_like(e) * std for e in self.embeddings])

    def mask(self, parts) -> list:
        """Zero the padding positions: they are not part of the input and must not be perturbed."""
        return [p * m for p, m in zip(parts, self.masks)]

    def forward(self, delta, rng_state=None, constant_embeddings=False) -> Tensor:
        """Logits at x + δ (δ = None: the clean logits, through the same path)."""
        embeddings = [e.detach() for e in self.embeddings] if constant_embeddings else self.embeddings
        delta = [0] * len(embeddings) if delta is None else delta
        perturbed = {key: e + d for key, e, d in zip(self.arguments, embeddings, delta)}
        with _replayed_rng(rng_state):
            return self.model(**self.fixed, **perturbed, task=self.task, return_dict=True).logits


@contextlib.contextmanager
def _replayed_rng(rng_state: Optional[RngState]):
    """Run the block with the generators set to `rng_state` (so dropout draws the clean forward's masks),
    then restore them: the rest of training sees the same random stream either way."""
    if rng_state is None:
        yield
        return
    devices = [rng_state.device] if rng_state.cuda is not None else []
    with torch.random.fork_rng(devices=devices):
        torch.set_rng_state(rng_state.cpu)
        if rng_state.cuda is not None:
            torch.cuda.set_rng_state(rng_state.cuda, rng_state.device)
        yield


@contextlib.contextmanager
def _autocast_off(model, device_type: str):
    """Run the block, and the model's forwards in it, in fp32; yields whether the caller ran at a lower
    precision. `Accelerator.prepare` with mixed precision (Trainer with --bf16) wraps the instance's
    `forward` in autocast and keeps the plain one as `_original_forward`: that one is put back meanwhile."""
    wrapped = model.__dict__.get("forward") if hasattr(model, "_original_forward") else None
    lowered = torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type) != torch.float32
    if wrapped is not None:
        model.forward = model._original_forward
    try:
        with torch.autocast(device_type, enabled=False):
            yield lowered or wrapped is not None
    finally:
        if wrapped is not None:
            model.forward = wrapped


def _all_finite(*tensors) -> bool:
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


# ----------------------------------------------------------------------------------------------------------
# Bregman proximal point: the mean teacher
# ----------------------------------------------------------------------------------------------------------


class MeanTeacher:
    """A momentum copy θ̃ of the model for SMART's Bregman proximal point term μ·ℓ_s(f(x; θ), f(x; θ̃)).

    The copy never takes gradients and always runs in eval mode (no dropout: a deterministic anchor)
    under `no_grad`, so it costs one set of weights and one inference forward per batch. Call
    `update(model)` after every optimizer step: θ̃ ← (1 − β)θ + βθ̃. The paper's schedule, β = 0.99 for
    the first 10% of the updates and 0.999 after, is `update(model, teacher.beta_at(step / total_steps))`.
    """

    def __init__(self, model: nn.Module, beta: float = 0.999, early_beta: float = 0.99, early_fraction: float = 0.1):
        if not 0 <= beta < 1 or not 0 <= early_beta < 1:
            raise ValueError(f"MeanTeacher: beta and early_beta must lie in [0, 1), got {beta} and {early_beta}")
        self.beta, self.early_beta, self.early_fraction = beta, early_beta, early_fraction
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        for parameter in self.model.parameters():
            parameter.grad = None
        # In eval mode a head with average_pair_orders answers with the mean over both orders of a pair, the
        # student (training) for the order given: two functions, whose divergence would never be 0 at θ̃ = θ.
        for spec in getattr(self.model.config, "tasks", {}).values():
            spec["average_pair_orders"] = False
        self.num_updates = 0

    def beta_at(self, progress: float) -> float:
        """β for a point of training (progress = step / total steps): the paper's two-phase schedule."""
        return self.early_beta if progress < self.early_fraction else self.beta

    @torch.no_grad()
    def update(self, model: nn.Module, beta: Optional[float] = None) -> None:
        beta = self.beta if beta is None else beta
        own = dict(self.model.named_parameters())
        current = dict(model.named_parameters())
        if own.keys() != current.keys():
            raise ValueError("MeanTeacher.update: the model's parameters are not those of the copied model")
        for name, parameter in own.items():
            parameter.lerp_(current[name].detach().to(parameter.device, parameter.dtype), 1.0 - beta)
        sources = dict(model.named_buffers())
        for name, buffer in self.model.named_buffers():
            buffer.copy_(sources[name])
        self.num_updates += 1

    def divergence(self, inputs: dict, task: str, student_logits: Tensor, kind: str) -> Tensor:
        """ℓ_s(f(x; θ), f(x; θ̃)), batch mean: gradients flow into the student side only."""
        device = student_logits.device
        if next(self.model.parameters()).device != device:
            self.model.to(device)
        model_inputs = {key: inputs[key] for key in MODEL_INPUT_COLUMNS if inputs.get(key) is not None}
        with torch.no_grad():
            teacher_logits = self.model(**model_inputs, task=task, return_dict=True).logits
        return smoothness_divergence(kind, student_logits, teacher_logits)


__all__ = [
    "SmartSettings",
    "SmartRegularizer",
    "SmartStats",
    "RngState",
    "MeanTeacher",
    "symmetric_kl_categorical",
    "symmetric_kl_bernoulli",
    "squared_error",
    "smoothness_divergence",
    "logit_mse",
    "per_example_norm",
    "normalize_per_example",
    "project_to_ball",
]
