"""PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning") for one all_tasks step.

Each task's gradient g_i on the shared parameters (flattened into one vector) is projected, for every
other task j in random order, off g_j when they conflict:

    if g_i · g_j < 0:   g_i ← g_i − (g_i · g_j) / ‖g_j‖² · g_j

(g_i is the progressively projected vector, g_j the original one), and the shared parameters receive the
sum of the projected gradients. A task head's parameters receive only their own task's gradient, and a
parameter no loss of the step reaches keeps `.grad` None: WeiChengTseng/Pytorch-PCGrad zero-fills such
gradients, which moves AdamW's moments of heads that were absent from the step.

Gradients are *added* to `.grad`, so gradient accumulation works as with `loss.backward()` (scale the
losses by 1 / accumulation steps first, as for a backward). Under torch.distributed each task's gradients
are averaged across ranks before the projection (the gradient of the global mean loss, as DDP would
produce), so every rank applies the same update; run the forward passes under DDP's `no_sync()`, since
`torch.autograd.grad` does not trigger DDP's own all-reduce.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn import Parameter


@dataclass
class PCGradStats:
    """What the surgery did, for logging: the cosine of every pair of raw task gradients on the shared
    parameters, and how many ordered pairs (i projected off j) conflicted."""

    cosine: dict[tuple[str, str], float] = field(default_factory=dict)
    projections: int = 0


def pcgrad_backward(
    task_losses: Mapping[str, Tensor],
    shared_params: Sequence[Parameter],
    task_params: Optional[Mapping[str, Sequence[Parameter]]] = None,
    *,
    generator: Optional[torch.Generator] = None,
    reduction: str = "sum",
) -> PCGradStats:
    """Backward of several task losses with PCGrad on `shared_params`; accumulates into `.grad`.

    Args:
        task_losses: scalar loss per task of this step (weights already applied).
        shared_params: parameters every task uses (the encoder); frozen ones are skipped.
        task_params: parameters of each task alone (its head); they get that task's plain gradient. It may
            name tasks absent from `task_losses`: their parameters are left untouched.
        generator: drives the random order of the other tasks. Under torch.distributed rank 0's order is
            broadcast, so the ranks cannot drift apart.
        reduction: "sum" (the gradient of the summed loss when nothing conflicts) or "mean".
    """
    shared = [p for p in shared_params if p.requires_grad]
    heads = {t: [p for p in ps if p.requires_grad] for t, ps in (task_params or {}).items()}
    _check_arguments(task_losses, shared, heads, reduction)
    tasks = list(task_losses)

    # One vector per task: its gradient on the shared parameters, then on its own head; and which of
    # those parameters its loss reached at all.
    vectors, reached = {}, {}
    for n, task in enumerate(tasks):
        params = shared + heads.get(task, [])
        grads = _grads(task_losses[task], params, retain_graph=n < len(tasks) - 1)
        vectors[task] = _flatten(grads, params)
        reached[task] = [g is not None for g in grads]
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if distributed:
        _average_across_ranks(vectors, reached)

    num_shared = sum(p.numel() for p in shared)
    shared_grads = {t: v[:num_shared] for t, v in vectors.items()}
    projected, stats = project_conflicting(shared_grads, _random_orders(tasks, generator, distributed))
    combined = torch.stack(list(projected.values())).sum(0)
    if reduction == "mean":
        combined /= len(tasks)

    # A shared parameter gets the combined gradient if any task reached it; a head, its own task's.
    shared_reached = [any(reached[t][k] for t in tasks) for k in range(len(shared))]
    _accumulate_flat(combined, shared, shared_reached)
    for task in tasks:
        _accumulate_flat(vectors[task][num_shared:], heads.get(task, []), reached[task][len(shared) :])
    return stats


def project_conflicting(
    gradients: Mapping[str, Tensor], orders: Mapping[str, Sequence[str]]
) -> tuple[dict[str, Tensor], PCGradStats]:
    """Yu et al.'s projection of flat task gradients; task t visits the other tasks in `orders[t]`."""
    tasks = list(gradients)
    stats = PCGradStats()
    norms_sq = {t: gradients[t].dot(gradients[t]) for t in tasks}
    for i, first in enumerate(tasks):
        for second in tasks[i + 1 :]:
            denominator = (norms_sq[first] * norms_sq[second]).sqrt()
            cosine = gradients[first].dot(gradients[second]) / denominator if denominator > 0 else 0.0
            stats.cosine[(first, second)] = float(cosine)
    projected = {}
    for task in tasks:
        if sorted(orders[task]) != sorted(t for t in tasks if t != task):
            raise ValueError(f"orders[{task!r}] must list the other tasks once each, got {list(orders[task])}")
        grad = gradients[task].clone()
        for other in orders[task]:
            dot = grad.dot(gradients[other])
            if dot < 0 and norms_sq[other] > 0:
                grad -= dot / norms_sq[other] * gradients[other]
                stats.projections += 1
        projected[task] = grad
    return projected, stats


def _random_orders(tasks: list[str], generator, distributed: bool) -> dict[str, list[str]]:
    """For each task, the other tasks in random order; under torch.distributed, rank 0's orders."""
    draws = torch.stack([torch.randperm(len(tasks) - 1, generator=generator) for _ in tasks])
    if distributed:
        draws = draws.to(_collective_device())
        dist.broadcast(draws, src=0)
    orders = {}
    for task, draw in zip(tasks, draws.tolist()):
        others = [t for t in tasks if t != task]
        orders[task] = [others[k] for k in draw]
    return orders


def _grads(loss: Tensor, params: list[Parameter], retain_graph: bool) -> list[Optional[Tensor]]:
    if not loss.requires_grad:  # e.g. an MNR term of a batch without paraphrase pairs: no gradient at all
        return [None] * len(params)
    return list(torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True))


def _flatten(grads: list[Optional[Tensor]], params: list[Parameter]) -> Tensor:
    # fp32 for the dot products; a parameter the task does not reach contributes zeros to its vector.
    parts = [(g if g is not None else torch.zeros_like(p)).reshape(-1).float() for g, p in zip(grads, params)]
    return torch.cat(parts) if parts else torch.zeros(0)


def _accumulate_flat(flat: Tensor, params: list[Parameter], reached: list[bool]) -> None:
    offset = 0
    for param, was_reached in zip(params, reached):
        numel = param.numel()
        if was_reached:
            grad = flat[offset : offset + numel].view_as(param).to(param.dtype)
            if param.grad is None:
                param.grad = grad.clone()
            else:
                param.grad += grad
        offset += numel


def _average_across_ranks(vectors: dict[str, Tensor], reached: dict[str, list[bool]]) -> None:
    """Mean of every task's gradient vector over ranks (in place); a parameter counts as reached if any
    rank reached it, so every rank leaves the same parameters' `.grad` untouched."""
    device = _collective_device()
    flags = torch.tensor([f for task in vectors for f in reached[task]], dtype=torch.int32, device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    flags = iter(flags.tolist())
    world = dist.get_world_size()
    for task, vector in vectors.items():
        reached[task] = [bool(next(flags)) for _ in reached[task]]
        on_device = vector.to(device)
        dist.all_reduce(on_device)
        vectors[task] = (on_device / world).to(vector.device)


def _collective_device() -> torch.device:
    # NCCL only moves CUDA tensors; gloo takes CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _check_arguments(task_losses, shared, heads, reduction) -> None:
    if not task_losses:
        raise ValueError("pcgrad_backward needs at least one task loss")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    for task, loss in task_losses.items():
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            raise ValueError(f"the loss of task {task!r} must be a scalar tensor, got {loss!r}")
    owners: dict[int, str] = {id(p): "shared" for p in shared}
    for task, params in heads.items():
        for param in params:
            owner = owners.setdefault(id(param), task)
            if owner != task:
                raise ValueError(f"a parameter of task {task!r} is also listed as {owner!r}")
