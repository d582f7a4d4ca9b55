"""Argument checks of `MultitaskBatchSampler`: each returns the checked value in the form the core uses, or
raises a ValueError naming the argument (and the task)."""

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np


def check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def checked_sizes(sizes: Mapping[str, int]) -> dict:
    if not isinstance(sizes, Mapping) or not sizes:
        raise ValueError(f"sizes must be a non-empty mapping of task name to number of examples, got {sizes!r}")
    for task, n in sizes.items():
        if not isinstance(task, str):
            raise TypeError(f"task names must be strings, got {task!r}")
        check_int(f"sizes[{task!r}]", n, minimum=1)
    return dict(sizes)


def check_applies(name: str, value, strategies: tuple, strategy: str) -> None:
    """An option of some strategies only is refused with any other."""
    if value is not None and strategy not in strategies:
        if len(strategies) == 1:
            raise ValueError(f"{name} applies only to the {strategies[0]!r} strategy, not to {strategy!r}")
        names = " and ".join(repr(s) for s in strategies)
        raise ValueError(f"{name} applies only to the {names} strategies, not to {strategy!r}")


def checked_temperature(temperature, default: float) -> float:
    temperature = default if temperature is None else temperature
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return float(temperature)


def per_task_ints(name: str, value, default, tasks) -> dict:
    """An int for every task, or a mapping for some tasks (the rest get `default`)."""
    if value is None or isinstance(value, int):
        value = {t: default if value is None else value for t in tasks}
    unknown = set(value) - set(tasks)
    if unknown:
        raise ValueError(f"{name} names unknown tasks {sorted(unknown)}; tasks are {list(tasks)}")
    checked = {t: value.get(t, default) for t in tasks}
    for task, v in checked.items():
        if v is not None:
            check_int(f"{name}[{task!r}]", v, minimum=1)
    return checked


def checked_splits(num_splits, sizes: dict) -> dict:
    """Parts per task for equal_split: by default the largest task in ceil(n_largest / n_second) parts."""
    largest = max(sizes, key=sizes.get)
    if num_splits is None or isinstance(num_splits, int):
        others = sorted((n for t, n in sizes.items() if t != largest), reverse=True)
        automatic = math.ceil(sizes[largest] / others[0]) if others else 1
        num_splits = {largest: automatic if num_splits is None else num_splits}
    splits = per_task_ints("num_splits", num_splits, 1, tuple(sizes))
    for task, parts in splits.items():
        if parts > sizes[task]:
            raise ValueError(f"num_splits[{task!r}]={parts} exceeds the task's {sizes[task]} examples")
    return splits


def checked_always_rows(always_rows: Mapping[str, int], sizes: dict) -> dict:
    checked = {}
    for task, rows in always_rows.items():
        if task not in sizes:
            raise ValueError(f"always_rows names unknown task {task!r}; tasks are {list(sizes)}")
        check_int(f"always_rows[{task!r}]", rows, minimum=0)
        if rows > sizes[task]:
            raise ValueError(f"always_rows[{task!r}]={rows} exceeds the task's {sizes[task]} examples")
        checked[task] = rows
    return checked


def checked_lengths(lengths: Mapping[str, Sequence[int]], sizes: dict) -> dict:
    checked = {}
    for task, values in lengths.items():
        if task not in sizes:
            raise ValueError(f"lengths names task {task!r}, which has no dataset; tasks: {', '.join(sizes)}")
        if len(values) != sizes[task]:
            raise ValueError(f"lengths[{task!r}] has {len(values)} entries for {sizes[task]} examples")
        checked[task] = np.asarray(values, dtype=np.int64)
    return checked


def checked_epoch_passes(epoch_passes, tasks, epoch_rows: dict) -> dict:
    """{task: passes} for the tasks read more than once an epoch; a capped task reads less than once."""
    passes = {t: p for t, p in per_task_ints("epoch_passes", epoch_passes, 1, tasks).items() if p > 1}
    for task, count in passes.items():
        if epoch_rows.get(task) is not None:
            raise ValueError(f"epoch_passes[{task!r}]={count} and epoch_rows[{task!r}]={epoch_rows[task]}: a task "
                             "is either read several times an epoch or capped, not both")
    return passes


def checked_token_budget(token_budget, tasks, lengths: dict, drop_last: bool) -> dict:
    """{task: budget} for the tasks that have one; each needs its lengths, and none may drop its last batch
    (a packed epoch's batch count is fixed, its tail kept)."""
    if token_budget is None:
        return {}
    budgets = {t: b for t, b in per_task_ints("token_budget", token_budget, None, tasks).items() if b is not None}
    for task in budgets:
        if task not in lengths:
            raise ValueError(f"token_budget[{task!r}] needs the task's example lengths (group by length)")
    if budgets and drop_last:
        raise ValueError("token_budget cannot be combined with drop_last: a packed task keeps its last batch")
    return budgets


def checked_keys(example_keys: Mapping[str, Sequence], sizes: dict) -> dict:
    checked = {}
    for task, keys in example_keys.items():
        if task not in sizes:
            raise ValueError(f"example_keys names unknown task {task!r}; tasks are {list(sizes)}")
        if len(keys) != sizes[task]:
            raise ValueError(f"example_keys[{task!r}] has {len(keys)} entries but the task has {sizes[task]} examples")
        checked[task] = [_as_key_set(task, i, k) for i, k in enumerate(keys)]
    return checked


def _as_key_set(task: str, index: int, key) -> frozenset:
    """A tuple/list/set is a collection of keys (e.g. a pair's two sentences); anything else is one key."""
    keys = frozenset(key) if isinstance(key, (tuple, list, set, frozenset)) else frozenset([key])
    for k in keys:
        if not isinstance(k, Hashable):
            raise TypeError(f"example_keys[{task!r}][{index}] holds an unhashable key {k!r}")
    return keys
