"""The task sampling strategies: each builds one epoch's steps from a `SamplingCore`.

A strategy is a function `(core, epoch, **options) -> steps`, a step being a tuple of (task, local indices
of one global batch): one pair, except for all_tasks. What each strategy means: trainers/sampling.py.
"""

import numpy as np

from .sampling_core import SPLIT_CUT, SamplingCore

DEFAULT_TEMPERATURE = 2.0


def sequential(core: SamplingCore, epoch: int) -> list:
    return [((t, batch),) for t in core.tasks for batch in core.batches(t, core.capped_epoch_order(t, epoch))]


def proportional(core: SamplingCore, epoch: int) -> list:
    return core.shuffled(epoch, sequential(core, epoch))


def round_robin(core: SamplingCore, epoch: int) -> list:
    smallest = min(core.sizes.values())
    per_task = [core.batches(t, core.epoch_order(t, epoch)[:smallest]) for t in core.tasks]
    return [((task, batch),) for turn in zip(*per_task) for task, batch in zip(core.tasks, turn)]


def equal_split(core: SamplingCore, epoch: int, *, num_splits: dict) -> list:
    steps = []
    for task in core.tasks:
        parts = num_splits[task]
        cut = core.rng(SPLIT_CUT, task, epoch // parts).permutation(core.sizes[task])
        part_size = core.sizes[task] // parts
        part = cut[(epoch % parts) * part_size : (epoch % parts + 1) * part_size]
        steps += [((task, batch),) for batch in core.batches(task, part)]
    return core.shuffled(epoch, steps)


def temperature(core: SamplingCore, epoch: int, *, temperature: float, size_cap: dict) -> list:
    # As many steps as proportional takes over the capped sizes: at T = 1 the two share them alike.
    total_steps = sum(core.num_batches(min(n, size_cap[t] or n)) for t, n in core.sizes.items())
    steps = []
    for task, count in zip(core.tasks, temperature_step_counts(core.sizes, size_cap, temperature, total_steps)):
        length = count * core.global_batch_size
        window = core.stream(task, start=epoch * length, length=length)
        steps += [((task, batch),) for batch in core.batches(task, window)]
    return core.shuffled(epoch, steps)


def all_tasks(core: SamplingCore, epoch: int) -> list:
    num_steps = core.num_batches(max(core.sizes.values()))
    length = num_steps * core.global_batch_size
    per_task = [core.batches(t, core.stream(t, start=epoch * length, length=length)) for t in core.tasks]
    return [tuple(zip(core.tasks, batches)) for batches in zip(*per_task)]


STRATEGIES = {
    "sequential": sequential,
    "round_robin": round_robin,
    "proportional": proportional,
    "temperature": temperature,
    "equal_split": equal_split,
    "all_tasks": all_tasks,
}


def temperature_step_counts(sizes: dict, size_cap: dict, temperature: float, total_steps: int) -> list[int]:
    """Steps per task (in task order): total_steps · p_i with p_i ∝ min(n_i, cap_i)^(1/T), rounded by
    largest remainder."""
    capped = [min(n, size_cap[t] or n) for t, n in sizes.items()]
    weights = np.array(capped, dtype=np.float64) ** (1.0 / temperature)
    expected = total_steps * weights / weights.sum()
    counts = np.floor(expected).astype(int)
    # Stable sort: ties in the remainder go to the earlier task, so the counts are deterministic.
    for i in np.argsort(-(expected - counts), kind="stable")[: total_steps - counts.sum()]:
        counts[i] += 1
    return counts.tolist()
