"""Optimization for minBERT fine-tuning: a hand-written AdamW and the seeds' parameter groups.

`AdamW` is the seeds' own optimizer (CS224N's optimizer.py): Adam (Kingma & Ba) with bias correction and
weight decay decoupled from the gradient (Loshchilov & Hutter). It performs exactly the operations of
`torch.optim.AdamW` in the same order, so the two agree step by step.

`build_parameter_groups` implements seed 002's recipe after Sun et al. (2019): layer-wise learning-rate
decay toward the input, a learning-rate multiplier for the task heads, no weight decay on biases,
LayerNorm and other parameters of fewer than two dimensions, and optionally frozen embeddings or a
frozen encoder (linear probing, seed 000's "pretrain" mode). With L encoder layers, base rate `lr`
and decay d, the learning rates are

    heads               lr * head_lr_multiplier
    pooler              lr              (it reads the top layer's [CLS] output, so it sits above layer L-1)
    encoder layer i     lr * d ** (L - 1 - i)        (the top layer, i = L-1, gets lr)
    embeddings          lr * d ** L     (one step below layer 0)

Parameter names follow transformers' BertModel under the model's `base_model_prefix` ("bert."):
`bert.embeddings.*`, `bert.encoder.layer.{i}.*`, `bert.pooler.*`; everything outside the encoder is a head.
A task's own copy of encoder parts (CerBERTus, Triple-BERT: `task_encoders.<task>.encoder.layer.{i}.*`,
`...pooler.*`, `...embeddings.*`) gets the learning rate of the part it copies. The static encoder
(`static_bert.*`) is frozen by design and joins no group.
"""
import ctypes
import re

import torch
from torch import nn

from hf_minbert import kernels

# Name suffixes (at a "." boundary) that get no weight decay. Every parameter with fewer than two
# dimensions is exempt as well (see no_decay_parameter_names), whatever its module calls it.
NO_DECAY_NAMES = ("bias", "LayerNorm.weight", "LayerNorm.bias")

_LAYER_NAME = re.compile(r"encoder\.layer\.(\d+)\.")
_TASK_ENCODER_NAME = re.compile(r"task_encoders\.[^.]+\.")
STATIC_ENCODER_PREFIX = "static_bert."


class AdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay, step for step equal to `torch.optim.AdamW` (same defaults).

    One step for a parameter p with gradient g, at step t (per parameter, starting at 1):
        p <- p * (1 - lr * weight_decay)                  decoupled decay: not rescaled by Adam's step size
        m <- beta1 * m + (1 - beta1) * g                  first moment
        v <- beta2 * v + (1 - beta2) * g * g              second moment
        p <- p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    The two (1 - beta**t) factors undo the bias of m and v toward their zero initialization.

    Each param group may carry its own lr/betas/eps/weight_decay (schedulers change group["lr"]);
    parameters whose .grad is None are skipped and their state is left untouched.

    The update is vectorized. Float32 CPU tensors go through the project's C kernel
    (hf_minbert/kernels/adamw.c): the formulas above in one pass over memory for every tensor of every group,
    split across torch's threads, as torch's fused AdamW does. Where that kernel cannot be built (no C
    compiler) the optimizer warns once, and everything goes through a few `torch._foreach_*` ops, each with
    its own scalars: the operations of torch's foreach AdamW, in its order, which sweep memory eight times.
    Other tensors (bf16, CUDA, non-contiguous) always take the foreach ops; so does everything with
    `use_kernel=False`. The foreach ops give torch's numbers exactly; the kernel agrees with torch's step to a
    few units in the last place (it rounds like torch's ops but has no fused multiply-add or vendor sqrt),
    as torch's own fused AdamW does.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, use_kernel=True):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        self.use_kernel = use_kernel

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        _check_hyperparameters(self.param_groups[-1], index=len(self.param_groups) - 1)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        updates = [update for index, group in enumerate(self.param_groups)
                   for update in self._advance_group(group, index)]
        native, eager = self._split(updates)
        if native and not _KERNEL.run(native):
            eager += native  # the kernel cannot be built: the foreach ops compute the same update
        if eager:
            _foreach_update(eager)
        return loss

    def _advance_group(self, group, index):
        """Count one more step for each parameter of `group` that has a gradient; return their updates, each
        (param, grad, exp_avg, exp_avg_sq, hyperparameters of its step count)."""
        updates, hyper_by_step = [], {}
        for param in group["params"]:
            if param.grad is None:
                continue
            if param.grad.is_sparse:
                raise RuntimeError(
                    f"AdamW does not support sparse gradients (param group {_group_label(group, index)}); "
                    "use torch.optim.SparseAdam or a dense embedding (nn.Embedding(sparse=False))"
                )
            state = self.state[param]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["step"] += 1
            step = state["step"]  # a parameter that skipped steps keeps its own bias correction
            if step not in hyper_by_step:
                hyper_by_step[step] = _step_hyperparameters(group, step)
            updates.append((param, param.grad, state["exp_avg"], state["exp_avg_sq"], hyper_by_step[step]))
        return updates

    def _split(self, updates):
        """(updates for the C kernel, updates for the foreach ops)."""
        if not (self.use_kernel and _KERNEL.usable) or torch.compiler.is_compiling():
            return [], updates
        native, eager = [], []
        for update in updates:
            (native if _fits_kernel(update) else eager).append(update)
        return native, eager


def _step_hyperparameters(group, step):
    """The scalars of one step: (decay factor or None, 1 - beta1, beta2, 1 - beta2, sqrt(1 - beta2**t),
    eps, -lr / (1 - beta1**t))."""
    lr = float(group["lr"])
    beta1, beta2 = group["betas"]
    decay = 1 - lr * group["weight_decay"] if group["weight_decay"] != 0 else None
    return (decay, 1 - beta1, beta2, 1 - beta2, (1 - beta2**step) ** 0.5, group["eps"], -lr / (1 - beta1**step))


def _foreach_update(updates):
    """Every update of the list through one pass of `torch._foreach_*` ops (torch's foreach AdamW's, in its
    order), each parameter with its own scalars, so that param groups and step counts share the calls."""
    params, grads, exp_avgs, exp_avg_sqs, hypers = (list(column) for column in zip(*updates))
    decay, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, neg_step_size = zip(*hypers)
    decaying = [(param, factor) for param, factor in zip(params, decay) if factor is not None]
    if decaying:
        torch._foreach_mul_(*(list(column) for column in zip(*decaying)))
    torch._foreach_lerp_(exp_avgs, grads, list(one_minus_beta1))  # = beta1 * m + (1 - beta1) * g, as torch computes it
    torch._foreach_mul_(exp_avg_sqs, list(beta2))
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, list(one_minus_beta2))
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denom, list(bias_correction2_sqrt))
    torch._foreach_add_(denom, list(eps))
    torch._foreach_addcdiv_(params, exp_avgs, denom, list(neg_step_size))


def _fits_kernel(update):
    param = update[0]
    return param.device.type == "cpu" and all(t.dtype == torch.float32 and t.is_contiguous() for t in update[:4])


class _KernelUpdate:
    """hf_minbert/kernels/adamw.c's `minbert_adamw_step`, loaded on first use; where it cannot be built,
    `usable` turns False for the rest of the process."""

    def __init__(self):
        self.usable = True
        self._step = None

    def run(self, updates):
        """Apply every (param, grad, exp_avg, exp_avg_sq, hyperparameters) of `updates` in one call; False
        (nothing applied) where the kernel cannot be built."""
        if self._step is None and not self._load():
            return False
        count = len(updates)
        pointers = [(ctypes.c_void_p * count)(*(tensor.data_ptr() for tensor in column))
                    for column in zip(*(update[:4] for update in updates))]
        numels = (ctypes.c_int64 * count)(*(update[0].numel() for update in updates))
        # one row of the kernel's hyperparameters per tensor, in _step_hyperparameters' order (no decay: factor 1)
        rows = [value for *_, h in updates for value in (1.0 if h[0] is None else h[0], *h[1:])]
        hypers = (ctypes.c_float * len(rows))(*rows)
        self._step(count, *pointers, numels, hypers, torch.get_num_threads())
        # The kernel wrote through raw pointers: tell autograd the parameters changed, as an in-place op would
        # (one tensor a call: torch before 2.3 takes no list).
        for update in updates:
            torch.autograd.graph.increment_version(update[0])
        return True

    def _load(self):
        library = kernels.load("adamw")
        if library is None:
            self.usable = False
            return False
        pointer_array = ctypes.POINTER(ctypes.c_void_p)
        step = library.minbert_adamw_step
        step.argtypes = [ctypes.c_int64, *[pointer_array] * 4, ctypes.POINTER(ctypes.c_int64),
                         ctypes.POINTER(ctypes.c_float), ctypes.c_int]
        step.restype = None
        self._step = step
        return True


_KERNEL = _KernelUpdate()


def _group_label(group, index):
    return repr(group["name"]) if "name" in group else f"#{index}"


# torch.optim.AdamW's options this AdamW does not implement: a group asking for one would silently get plain AdamW
# (maximize=True would descend where torch ascends).
UNSUPPORTED_GROUP_OPTIONS = ("amsgrad", "maximize", "capturable", "differentiable")


def _check_hyperparameters(group, index):
    """Reject values for which Adam silently diverges or does nothing sensible, and options it does not
    implement; name the group."""
    label = _group_label(group, index)
    for option in UNSUPPORTED_GROUP_OPTIONS:
        if group.get(option):
            raise ValueError(f"AdamW param group {label}: {option}=True is not supported by hf_minbert's AdamW; "
                             "use torch.optim.AdamW for it")
    lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    if not float(lr) >= 0.0:
        raise ValueError(f"AdamW param group {label}: lr must be >= 0, got {lr}")
    for name, beta in (("betas[0]", beta1), ("betas[1]", beta2)):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"AdamW param group {label}: {name} must be in [0, 1), got {beta}")
    if not eps >= 0.0:
        raise ValueError(f"AdamW param group {label}: eps must be >= 0, got {eps}")
    if not weight_decay >= 0.0:
        raise ValueError(f"AdamW param group {label}: weight_decay must be >= 0, got {weight_decay}")


def encoder_prefix(model):
    """The prefix of the shared encoder's parameter names: "bert." on a model with heads (also a Triple-BERT,
    which shares no encoder at all), "" on the bare encoder."""
    attribute = getattr(model, "base_model_prefix", "")
    has_task_encoders = getattr(model, "task_encoders", None) is not None
    if attribute and (isinstance(getattr(model, attribute, None), nn.Module) or has_task_encoders):
        return attribute + "."
    return ""


def encoder_layer_index(name):
    """Index of the encoder layer a parameter belongs to (name relative to the encoder), or None."""
    match = _LAYER_NAME.match(name)
    return int(match.group(1)) if match else None


def encoder_relative_name(name, prefix):
    """A parameter's name inside the encoder part it belongs to — the shared encoder (`prefix`) or a task's own
    copy (`task_encoders.<task>.`) — or None for a head parameter."""
    task_encoder = _TASK_ENCODER_NAME.match(name)
    if task_encoder:
        return name[task_encoder.end():]
    return name[len(prefix):] if name.startswith(prefix) else None


def parameter_part(name, prefix):
    """Which part of the model a parameter belongs to: "embeddings", "layer_{i}", "pooler" or "heads"."""
    if name.startswith(STATIC_ENCODER_PREFIX):
        raise ValueError(
            f"parameter {name!r} belongs to the static encoder, which is frozen by design: it has no learning rate"
        )
    inner = encoder_relative_name(name, prefix)
    if inner is None:
        return "heads"
    layer = encoder_layer_index(inner)
    if layer is not None:
        return f"layer_{layer}"
    for part in ("embeddings", "pooler"):
        if inner.startswith(part + "."):
            return part
    raise ValueError(
        f"parameter {name!r} is inside the encoder ({prefix or 'bare model'}) but is not an embedding, "
        "encoder layer or pooler parameter: cannot assign it a learning rate"
    )


def count_encoder_layers(model, prefix):
    """Number of encoder layers: config.num_hidden_layers, checked against the parameter names (shared layers
    and task-specific copies together; the frozen static encoder aside)."""
    inner_names = (encoder_relative_name(name, prefix) for name, _ in model.named_parameters()
                   if not name.startswith(STATIC_ENCODER_PREFIX))
    found = {encoder_layer_index(inner) for inner in inner_names if inner is not None}
    found.discard(None)
    configured = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    num_layers = configured if configured is not None else len(found)
    if found != set(range(num_layers)):
        raise ValueError(
            f"encoder layers in the parameter names are {sorted(found)}, but the model has "
            f"{num_layers} layers (config.num_hidden_layers={configured})"
        )
    return num_layers


def part_lr_scale(part, num_layers, layerwise_lr_decay, head_lr_multiplier):
    """The factor on the base learning rate for one part of the model (see the module docstring)."""
    if part == "heads":
        return head_lr_multiplier
    if part == "pooler":
        return 1.0
    if part == "embeddings":
        return layerwise_lr_decay**num_layers
    layer = int(part[len("layer_"):])
    return layerwise_lr_decay ** (num_layers - 1 - layer)


def _part_rank(part, num_layers):
    # Groups come out from the input upward: embeddings, layer_0 .. layer_{L-1}, pooler, heads.
    order = {"embeddings": -1, "pooler": num_layers, "heads": num_layers + 1}
    return order[part] if part in order else int(part[len("layer_"):])


def no_decay_parameter_names(model, no_decay=NO_DECAY_NAMES):
    """Names of parameters exempt from weight decay: names ending in a `no_decay` suffix, and every
    parameter with fewer than two dimensions (biases, LayerNorm gains, learned scalars such as a cosine
    head's scale and threshold: shrinking those toward zero regularizes nothing, it only biases them)."""
    return {
        name
        for name, param in model.named_parameters()
        if param.ndim < 2 or any(name == suffix or name.endswith("." + suffix) for suffix in no_decay)
    }


def freeze_parameters(model, freeze_embeddings=False, freeze_encoder=False):
    """Set requires_grad=False on the embeddings (word, position and token-type, and their LayerNorm) or on the
    whole encoder, pooler included (linear probing, the seeds' "pretrain" mode); task-specific copies of encoder
    parts count as the encoder. Never unfreezes."""
    prefix = encoder_prefix(model)
    if freeze_encoder and prefix == "":
        raise ValueError("freeze_encoder=True on a bare encoder (no heads) would leave nothing to train")
    if not (freeze_encoder or freeze_embeddings):
        return
    for name, param in model.named_parameters():
        if not param.requires_grad:  # already frozen, e.g. the static encoder
            continue
        part = parameter_part(name, prefix)
        if part == "embeddings" or (freeze_encoder and part != "heads"):
            param.requires_grad_(False)


def _check_group_arguments(lr, weight_decay, layerwise_lr_decay, head_lr_multiplier):
    if not lr >= 0:
        raise ValueError(f"lr must be >= 0, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if not 0 < layerwise_lr_decay <= 1:
        raise ValueError(f"layerwise_lr_decay must be in (0, 1] (1 = no decay), got {layerwise_lr_decay}")
    if not head_lr_multiplier > 0:
        raise ValueError(f"head_lr_multiplier must be > 0, got {head_lr_multiplier}")


def build_parameter_groups(
    model,
    lr,
    weight_decay=0.0,
    layerwise_lr_decay=1.0,
    head_lr_multiplier=1.0,
    freeze_embeddings=False,
    freeze_encoder=False,
    no_decay=NO_DECAY_NAMES,
):
    """Param-group dicts for any torch optimizer: one per (part, decay/no-decay), named e.g. "layer_3/decay".

    Freezes what is asked (requires_grad=False; frozen parameters join no group), then puts every
    trainable parameter into exactly one group with its learning rate (module docstring) and weight
    decay (0 for biases and LayerNorm). Each group carries "name", "lr", "weight_decay", "params" and
    "param_names". Raises ValueError for bad arguments, unknown parameter names, or nothing to train.
    """
    _check_group_arguments(lr, weight_decay, layerwise_lr_decay, head_lr_multiplier)
    freeze_parameters(model, freeze_embeddings=freeze_embeddings, freeze_encoder=freeze_encoder)
    prefix = encoder_prefix(model)
    num_layers = count_encoder_layers(model, prefix)
    exempt = no_decay_parameter_names(model, no_decay)

    groups = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = parameter_part(name, prefix)
        decays = name not in exempt
        key = (part, decays)
        if key not in groups:
            groups[key] = {
                "name": f"{part}/{'decay' if decays else 'no_decay'}",
                "lr": lr * part_lr_scale(part, num_layers, layerwise_lr_decay, head_lr_multiplier),
                "weight_decay": weight_decay if decays else 0.0,
                "params": [],
                "param_names": [],
            }
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    if not groups:
        raise ValueError("no trainable parameters left: everything is frozen (requires_grad=False)")
    ordered = sorted(groups, key=lambda key: (_part_rank(key[0], num_layers), not key[1]))
    return [groups[key] for key in ordered]


def create_optimizer(
    model,
    lr,
    weight_decay=0.0,
    layerwise_lr_decay=1.0,
    head_lr_multiplier=1.0,
    freeze_embeddings=False,
    freeze_encoder=False,
    betas=(0.9, 0.999),
    eps=1e-8,
    use_torch_adamw=False,
):
    """AdamW over `build_parameter_groups(model, ...)`: ours by default, torch.optim.AdamW on request."""
    groups = build_parameter_groups(
        model,
        lr,
        weight_decay=weight_decay,
        layerwise_lr_decay=layerwise_lr_decay,
        head_lr_multiplier=head_lr_multiplier,
        freeze_embeddings=freeze_embeddings,
        freeze_encoder=freeze_encoder,
    )
    optimizer_class = torch.optim.AdamW if use_torch_adamw else AdamW
    return optimizer_class(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def describe_parameter_groups(optimizer_or_groups):
    """One line per group (name, lr, weight decay, parameter count) for logs."""
    groups = getattr(optimizer_or_groups, "param_groups", optimizer_or_groups)
    return "\n".join(
        f"{group.get('name', f'#{index}'):<22} lr={float(group['lr']):.3e} "
        f"weight_decay={group['weight_decay']:g} params={sum(p.numel() for p in group['params'])}"
        for index, group in enumerate(groups)
    )
