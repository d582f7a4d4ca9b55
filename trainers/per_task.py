"""The one parser of per-task options: `sst=2,para=6` (some tasks), `2` (every task), or a dict.

Every flag that takes a value per task goes through `parse_task_values`: `--task_weights`, `--smart_weight`,
`--task_epoch_rows`, `--task_epoch_passes`, `--batch_tokens`, `--pair_swap_probability`, `minbert distill
--alpha` (numbers, with `parse_per_task`) and `minbert train`'s head options such as `--pair_encoding sts=bi`
(strings). An error names the flag and the bad item.
"""
import math


def task_items(value, flag: str):
    """The (task, value) pairs of an option naming tasks, in the order given; None for one value for every
    task. Empty items (`sst=2,`) are skipped."""
    if isinstance(value, dict):
        return list(value.items())
    if "=" not in str(value):
        return None
    items = [_split_item(item, flag) for item in str(value).split(",") if item.strip()]
    named = [task for task, _ in items]
    twice = sorted({task for task in named if named.count(task) > 1})
    if twice:  # which setting was meant cannot be told
        raise ValueError(f"--{flag}: {', '.join(twice)} given twice in {value!r}")
    return items


def parse_task_values(value, flag: str, tasks, *, convert=str, every=None, skip_unknown=False) -> dict:
    """{task: convert(value)} for the tasks `value` sets: those it names, or for one value `every` task
    (default: all of `tasks`). None or "" sets none. A task not in `tasks` is an error naming the flag, or is
    ignored with `skip_unknown`."""
    if value is None or value == "":
        return {}
    items = task_items(value, flag)
    if items is None:
        one = convert(value)
        return {task: one for task in (tasks if every is None else every)}
    result = {}
    for task, setting in items:
        if task not in tasks:
            if skip_unknown:
                continue
            raise ValueError(f"--{flag}: unknown task {task!r}; known: {', '.join(tasks)}")
        result[task] = convert(setting)
    return result


def parse_per_task(value, name: str, tasks, default: float = 0.0, *, skip_unknown: bool = False) -> dict:
    """`"2"` -> every task 2.0; `"sst=2,para=6"` -> those tasks, the rest `default`; unknown task -> error."""
    tasks = list(tasks)
    given = parse_task_values(value, name, tasks, convert=lambda v: as_float(v, name), skip_unknown=skip_unknown)
    return {task: given.get(task, default) for task in tasks}


def check_per_task_weights(value, name: str) -> None:
    """Every weight in a per-task option (one number, `sst=2,para=6` or a dict) is finite and >= 0: a NaN
    weight trains a model of NaNs, a negative one climbs the loss."""
    for number in given_values(value, name):
        weight = as_float(number, name)
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"--{name}: weights must be finite and >= 0, got {number!r}")


def check_per_task_counts(value, name: str, minimum: int = 0) -> None:
    """Every count in a per-task option is a whole number >= `minimum`."""
    for number in given_values(value, name):
        count = as_float(number, name)
        if not (math.isfinite(count) and count >= minimum and count == int(count)):
            raise ValueError(f"--{name}: counts must be whole numbers >= {minimum}, got {number!r}")


def check_per_task_probabilities(value, name: str) -> None:
    """Every value in a per-task option is a probability in [0, 1]."""
    for number in given_values(value, name):
        probability = as_float(number, name)
        if not 0 <= probability <= 1:  # also refuses NaN
            raise ValueError(f"--{name}: probabilities lie in [0, 1], got {number!r}")


def as_float(value, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"--{name}: {value!r} is not a number") from None


def given_values(value, name: str) -> list:
    """The values of a per-task option, whatever tasks it names (checked before the tasks are known)."""
    if value is None or value == "":
        return []
    items = task_items(value, name)
    return [value] if items is None else [setting for _, setting in items]


def _split_item(item: str, flag: str):
    if item.count("=") != 1:
        raise ValueError(f"--{flag}: expected task=value, got {item!r}")
    task, setting = item.split("=")
    return task.strip(), setting.strip()
