"""Which task, and which examples, each multitask training step gets.

The tasks' datasets are concatenated in the order of `sizes` (as `torch.utils.data.ConcatDataset` does),
so an example's global index is its task's offset plus its index inside the task. A
`MultitaskBatchSampler` yields, for every optimizer micro-step, the global indices of this rank's share
of one *global batch* of `batch_size * num_replicas` examples.

Strategies (`SAMPLING_STRATEGIES`), all reshuffled every epoch and deterministic per (seed, epoch):

- ``sequential``   every example of the first task, then of the second, ... (seed 000's sequential training).
- ``round_robin``  each task down-sampled to the smallest task's size, a fresh random subset every epoch,
                   tasks taking turns batch by batch (seed 001).
- ``proportional`` every example of every task once; the tasks' batches shuffled together, so a task's
                   share of steps is proportional to its size (seed 002, MT-DNN's default).
                   With ``epoch_rows`` (``sequential`` too), a task larger than its cap reads only that
                   many examples an epoch from its endless reshuffled stream (see ``temperature``), so
                   a very large task (the treebank's phrases) neither starves the others nor makes
                   an epoch hours long, and still covers all its data over the epochs. With
                   ``always_rows``, a task's first rows (its core source: SST's sentences beside their
                   treebank phrases) are read whole every epoch and the cap draws only from the rest.
- ``temperature``  as many steps as ``proportional``, shared among tasks with p_i ∝ min(n_i, cap_i)^(1/T)
                   (T=1 is proportional, T→∞ uniform). The counts are the rounded expectations
                   (largest remainder), in shuffled order: i.i.d. task draws with the variance removed.
                   Each task reads an endless stream of reshuffled passes over its data, so an
                   up-sampled task repeats only after a full pass and a down-sampled one continues in
                   the next epoch where it stopped.
- ``equal_split``  seed 003: a task with k splits is cut into k random disjoint parts of n // k examples
                   and each epoch uses the next part (a new cut every k epochs; the n % k left-over
                   examples differ each cut); by default only the largest task is split, into
                   k = ceil(n_largest / n_second_largest) parts (Quora: 17). Batches shuffled together.
- ``all_tasks``    every step holds one full batch of every task (seeds 000/004's cumulative loss; PCGrad
                   needs it). An epoch is ceil(n_largest / global batch) steps (floor with drop_last);
                   every task reads its endless reshuffled stream, so the largest task covers its data
                   about once per epoch and smaller tasks cycle, each pass freshly shuffled.

Data parallelism: every rank builds the same global plan and takes the contiguous slice `rank` of each
global batch, so all ranks are on the same task at the same step (DDP all-reduces one task's gradients)
and see disjoint examples. A task's last, incomplete global batch is dropped with `drop_last=True`;
otherwise it is kept and, only when its size is not a multiple of `num_replicas`, padded with the first
examples of the task's epoch order so every rank gets the same number of examples (one replica: never
padded). Under `accelerate`, do not let `Accelerator.prepare` re-shard this sampler (its
`BatchSamplerShard` would send whole batches to different ranks).

Length grouping: with `lengths[task]` (tokens per example), a task's order is cut into megabatches of
`LENGTH_GROUP_BATCHES` global batches, each sorted longest first before it is cut into batches — transformers'
`group_by_length` — so a batch pads little while the megabatches keep the epoch random.

No duplicates: with `example_keys[task]` (one entry per example: a key, or a tuple/list/set of keys, e.g.
both sentences of a pair), examples sharing a key are moved apart by swapping them with examples of other
batches of the same task and epoch, so in-batch negatives of the MNR loss are not copies of the positive.
Batch sizes and the task schedule are unchanged; a duplicate that no swap can remove (too many copies for
the task's batches) stays, and the MNR loss's false-negative mask covers it.
"""

import math
import zlib
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple, Optional, Union

import numpy as np
from torch.utils.data import Sampler

SAMPLING_STRATEGIES = ("sequential", "round_robin", "proportional", "temperature", "equal_split", "all_tasks")
DEFAULT_TEMPERATURE = 2.0
LENGTH_GROUP_BATCHES = 50  # as transformers' LengthGroupedSampler's megabatch multiplier

# Tags that give every random draw its own independent stream (numpy SeedSequence entropy).
_EPOCH_ORDER, _TASK_STREAM, _SPLIT_CUT, _STEP_ORDER = 0, 1, 2, 3


class TaskBatch(NamedTuple):
    """One task's global batch within a step: global indices of all ranks' examples, rank 0's first."""

    task: str
    indices: np.ndarray


class MultitaskBatchSampler(Sampler):
    """Batch sampler over concatenated task datasets; see the module docstring for the strategies.

    Args:
        sizes: number of examples per task, in the order the datasets are concatenated.
        batch_size: examples per rank and step, for each task of the step.
        strategy: one of `SAMPLING_STRATEGIES`.
        seed: base seed (int >= 0); epoch `e` draws from (seed, e), so runs are reproducible and resumable.
        num_replicas, rank: data-parallel world size and this process's rank.
        drop_last: drop each task's incomplete final global batch instead of keeping it.
        temperature: T of the `temperature` strategy (default `DEFAULT_TEMPERATURE`).
        size_cap: `temperature` only: n_i is capped at this (an int for every task, or per task) when
            computing p_i.
        num_splits: `equal_split` only: parts per task (a mapping), or an int for the largest task; None
            picks ceil(n_largest / n_second_largest) for the largest task.
        example_keys: per task, one key (or collection of keys) per example; those tasks' batches avoid
            repeated keys.
        lengths: per task, the token count of each example; those tasks' batches are length-grouped.
        epoch_rows: `sequential` and `proportional` only: per task, the most examples it gives an epoch
            (an int for every task, or per task).
        always_rows: with `epoch_rows`, per task: how many of its first examples every epoch reads whole;
            the task's cap then draws only from the examples after them.
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        batch_size: int,
        strategy: str = "proportional",
        *,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        temperature: Optional[float] = None,
        size_cap: Union[int, Mapping[str, int], None] = None,
        num_splits: Union[int, Mapping[str, int], None] = None,
        example_keys: Optional[Mapping[str, Sequence]] = None,
        lengths: Optional[Mapping[str, Sequence[int]]] = None,
        epoch_rows: Union[int, Mapping[str, int], None] = None,
        always_rows: Optional[Mapping[str, int]] = None,
    ):
        self.sizes = _check_sizes(sizes)
        self.tasks = tuple(self.sizes)
        _check_int("batch_size", batch_size, minimum=1)
        _check_int("seed", seed, minimum=0)
        _check_int("num_replicas", num_replicas, minimum=1)
        _check_int("rank", rank, minimum=0)
        if rank >= num_replicas:
            raise ValueError(f"rank={rank} must be smaller than num_replicas={num_replicas}")
        if strategy not in SAMPLING_STRATEGIES:
            raise ValueError(
                f"unknown task sampling strategy {strategy!r}; choose one of: {', '.join(SAMPLING_STRATEGIES)}"
            )
        self.strategy = strategy
        self.batch_size = batch_size
        self.global_batch_size = batch_size * num_replicas
        self.seed, self.num_replicas, self.rank, self.drop_last = seed, num_replicas, rank, drop_last
        self._check_applies("temperature", temperature, "temperature")
        self._check_applies("size_cap", size_cap, "temperature")
        self._check_applies("num_splits", num_splits, "equal_split")
        self.temperature = self._checked_temperature(temperature)
        self.size_cap = self._per_task_ints("size_cap", size_cap, default=None)
        self.num_splits = self._checked_splits(num_splits)
        if epoch_rows is not None and strategy not in ("sequential", "proportional"):
            raise ValueError(f"epoch_rows applies only to the 'sequential' and 'proportional' strategies, not to {strategy!r}")
        self.epoch_rows = self._per_task_ints("epoch_rows", epoch_rows, default=None)
        self.always_rows = self._checked_always_rows(always_rows or {})
        self.example_keys = self._checked_keys(example_keys or {})
        self.lengths = self._checked_lengths(lengths or {})
        self.offsets = dict(zip(self.tasks, np.cumsum([0, *self.sizes.values()])[:-1].tolist()))
        self.epoch = 0
        self._cached_plan: tuple[int, list[tuple[TaskBatch, ...]]] = (-1, [])
        if len(self.plan(0)) == 0:
            raise ValueError(
                f"strategy {strategy!r} with drop_last=True makes no step for task sizes {dict(self.sizes)}: "
                f"no global batch of {self.global_batch_size} examples is ever filled"
            )

    # ---- the public face: what DataLoader and Trainer use ----

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan `__iter__` yields (Trainer/accelerate call this every epoch)."""
        _check_int("epoch", epoch, minimum=0)
        self.epoch = epoch

    def __iter__(self):
        for step in self.plan(self.epoch):
            yield [index for batch in step for index in self._rank_share(batch.indices).tolist()]

    def __len__(self) -> int:
        """Steps per epoch; the same for every epoch and every rank."""
        return len(self.plan(self.epoch))

    def task_schedule(self, epoch: Optional[int] = None) -> list[tuple[str, ...]]:
        """The tasks of each step of `epoch` (default: the current one); one task except for all_tasks."""
        return [tuple(batch.task for batch in step) for step in self.plan(self.epoch if epoch is None else epoch)]

    def task_of(self, index: int) -> str:
        """The task a global index belongs to."""
        for task in reversed(self.tasks):
            if index >= self.offsets[task]:
                if index - self.offsets[task] >= self.sizes[task]:
                    break
                return task
        raise IndexError(f"global index {index} is outside the {sum(self.sizes.values())} concatenated examples")

    def plan(self, epoch: int) -> list[tuple[TaskBatch, ...]]:
        """Every step of `epoch` as its tasks' global batches (all ranks); cached for the last epoch asked."""
        if self._cached_plan[0] != epoch:
            builder = getattr(self, f"_plan_{self.strategy}")
            steps = [tuple(TaskBatch(t, b + self.offsets[t]) for t, b in step) for step in builder(epoch)]
            self._cached_plan = (epoch, steps)
        return self._cached_plan[1]

    # ---- one builder per strategy: each returns steps as tuples of (task, local indices) ----

    def _plan_sequential(self, epoch):
        return [((t, batch),) for t in self.tasks for batch in self._batches(t, self._capped_epoch_order(t, epoch))]

    def _plan_proportional(self, epoch):
        return self._shuffled(epoch, self._plan_sequential(epoch))

    def _plan_round_robin(self, epoch):
        smallest = min(self.sizes.values())
        per_task = [self._batches(t, self._epoch_order(t, epoch)[:smallest]) for t in self.tasks]
        return [((task, batch),) for turn in zip(*per_task) for task, batch in zip(self.tasks, turn)]

    def _plan_equal_split(self, epoch):
        steps = []
        for task in self.tasks:
            parts = self.num_splits[task]
            cut = self._rng(_SPLIT_CUT, task, epoch // parts).permutation(self.sizes[task])
            part_size = self.sizes[task] // parts
            part = cut[(epoch % parts) * part_size : (epoch % parts + 1) * part_size]
            steps += [((task, batch),) for batch in self._batches(task, part)]
        return self._shuffled(epoch, steps)

    def _plan_temperature(self, epoch):
        total_steps = sum(self._num_batches(n) for n in self.sizes.values())
        steps = []
        for task, count in zip(self.tasks, self.temperature_step_counts(total_steps)):
            length = count * self.global_batch_size
            window = self._stream(task, start=epoch * length, length=length)
            steps += [((task, batch),) for batch in self._batches(task, window)]
        return self._shuffled(epoch, steps)

    def _plan_all_tasks(self, epoch):
        num_steps = self._num_batches(max(self.sizes.values()))
        length = num_steps * self.global_batch_size
        per_task = [self._batches(t, self._stream(t, start=epoch * length, length=length)) for t in self.tasks]
        return [tuple(zip(self.tasks, batches)) for batches in zip(*per_task)]

    # ---- building blocks ----

    def temperature_step_counts(self, total_steps: int) -> list[int]:
        """Steps per task (in task order) for `temperature`: total_steps · p_i, rounded by largest remainder."""
        capped = [min(n, self.size_cap[t] or n) for t, n in self.sizes.items()]
        weights = np.array(capped, dtype=np.float64) ** (1.0 / self.temperature)
        expected = total_steps * weights / weights.sum()
        counts = np.floor(expected).astype(int)
        # Stable sort: ties in the remainder go to the earlier task, so the counts are deterministic.
        for i in np.argsort(-(expected - counts), kind="stable")[: total_steps - counts.sum()]:
            counts[i] += 1
        return counts.tolist()

    def _rng(self, *tags) -> np.random.Generator:
        # Tasks are identified by a hash of their name, so reordering the dict does not reshuffle a task.
        entropy = [self.seed, *(zlib.crc32(t.encode()) if isinstance(t, str) else t for t in tags)]
        return np.random.default_rng(entropy)

    def _epoch_order(self, task: str, epoch: int) -> np.ndarray:
        return self._rng(_EPOCH_ORDER, task, epoch).permutation(self.sizes[task])

    def _capped_epoch_order(self, task: str, epoch: int) -> np.ndarray:
        """The task's examples this epoch: all of them, or its `always_rows` first examples and the next
        `epoch_rows` of the stream over the others, shuffled together."""
        cap, always = self.epoch_rows[task], self.always_rows.get(task, 0)
        if cap is None or always + cap >= self.sizes[task]:
            return self._epoch_order(task, epoch)
        if always == 0:
            return self._stream(task, start=epoch * cap, length=cap)
        rest = always + self._stream(task, start=epoch * cap, length=cap, first=always)
        return self._rng(_EPOCH_ORDER, task, epoch).permutation(np.concatenate([np.arange(always), rest]))

    def _stream(self, task: str, start: int, length: int, first: int = 0) -> np.ndarray:
        """Positions [start, start + length) of the endless sequence of reshuffled passes over the task's
        examples from `first` on, as indices relative to `first`."""
        if length == 0:
            return np.empty(0, dtype=np.int64)
        n = self.sizes[task] - first
        tag = (task,) if first == 0 else (task, first)  # a stream over fewer rows draws its own passes
        first_pass, last_pass = start // n, (start + length - 1) // n
        passes = np.concatenate([self._rng(_TASK_STREAM, *tag, k).permutation(n) for k in range(first_pass, last_pass + 1)])
        return passes[start - first_pass * n : start - first_pass * n + length]

    def _num_batches(self, num_examples: int) -> int:
        rounding = math.floor if self.drop_last else math.ceil
        return rounding(num_examples / self.global_batch_size)

    def _batches(self, task: str, order: np.ndarray) -> list[np.ndarray]:
        """Cut a task's epoch order into global batches, handling the tail, then separate duplicates."""
        size = self.global_batch_size
        if task in self.lengths:
            order = self._grouped_by_length(task, order)
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        if batches and len(batches[-1]) < size:
            if self.drop_last:
                batches.pop()
            else:
                missing = -len(batches[-1]) % self.num_replicas
                batches[-1] = np.concatenate([batches[-1], np.resize(order, missing)])
        if task in self.example_keys:
            _separate_duplicates(batches, self.example_keys[task])
        return batches

    def _grouped_by_length(self, task: str, order: np.ndarray) -> np.ndarray:
        lengths, mega = self.lengths[task], self.global_batch_size * LENGTH_GROUP_BATCHES
        groups = [order[i : i + mega] for i in range(0, len(order), mega)]
        # Stable sort: equal lengths keep their random order.
        return np.concatenate([g[np.argsort(-lengths[g], kind="stable")] for g in groups]) if groups else order

    def _shuffled(self, epoch: int, steps: list) -> list:
        """Shuffle which task each step serves, keeping each task's own batches in their order (so a
        task's stream is read front to back)."""
        order = self._rng(_STEP_ORDER, epoch).permutation(len(steps))
        tasks_in_order = [steps[i][0][0] for i in order]
        queues = {task: iter([s for s in steps if s[0][0] == task]) for task in self.tasks}
        return [next(queues[task]) for task in tasks_in_order]

    def _rank_share(self, indices: np.ndarray) -> np.ndarray:
        share = len(indices) // self.num_replicas
        return indices[self.rank * share : (self.rank + 1) * share]

    # ---- argument checks ----

    def _check_applies(self, name: str, value, strategy: str) -> None:
        if value is not None and self.strategy != strategy:
            raise ValueError(f"{name} applies only to the {strategy!r} strategy, not to {self.strategy!r}")

    def _checked_temperature(self, temperature):
        temperature = DEFAULT_TEMPERATURE if temperature is None else temperature
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
        return float(temperature)

    def _per_task_ints(self, name: str, value, default) -> dict:
        """An int for every task, or a mapping for some tasks (the rest get `default`)."""
        if value is None or isinstance(value, int):
            value = {t: default if value is None else value for t in self.tasks}
        unknown = set(value) - set(self.tasks)
        if unknown:
            raise ValueError(f"{name} names unknown tasks {sorted(unknown)}; tasks are {list(self.tasks)}")
        checked = {t: value.get(t, default) for t in self.tasks}
        for task, v in checked.items():
            if v is not None:
                _check_int(f"{name}[{task!r}]", v, minimum=1)
        return checked

    def _checked_splits(self, num_splits) -> dict:
        largest = max(self.tasks, key=self.sizes.get)
        if num_splits is None or isinstance(num_splits, int):
            others = sorted((n for t, n in self.sizes.items() if t != largest), reverse=True)
            automatic = math.ceil(self.sizes[largest] / others[0]) if others else 1
            num_splits = {largest: automatic if num_splits is None else num_splits}
        splits = self._per_task_ints("num_splits", num_splits, default=1)
        for task, parts in splits.items():
            if parts > self.sizes[task]:
                raise ValueError(f"num_splits[{task!r}]={parts} exceeds the task's {self.sizes[task]} examples")
        return splits

    def _checked_always_rows(self, always_rows: Mapping[str, int]) -> dict:
        checked = {}
        for task, rows in always_rows.items():
            if task not in self.sizes:
                raise ValueError(f"always_rows names unknown task {task!r}; tasks are {list(self.tasks)}")
            _check_int(f"always_rows[{task!r}]", rows, minimum=0)
            if rows > self.sizes[task]:
                raise ValueError(f"always_rows[{task!r}]={rows} exceeds the task's {self.sizes[task]} examples")
            checked[task] = rows
        return checked

    def _checked_lengths(self, lengths: Mapping[str, Sequence[int]]) -> dict:
        checked = {}
        for task, values in lengths.items():
            if task not in self.sizes:
                raise ValueError(f"lengths names task {task!r}, which has no dataset; tasks: {', '.join(self.tasks)}")
            if len(values) != self.sizes[task]:
                raise ValueError(f"lengths[{task!r}] has {len(values)} entries for {self.sizes[task]} examples")
            checked[task] = np.asarray(values, dtype=np.int64)
        return checked

    def _checked_keys(self, example_keys: Mapping[str, Sequence]) -> dict:
        checked = {}
        for task, keys in example_keys.items():
            if task not in self.sizes:
                raise ValueError(f"example_keys names unknown task {task!r}; tasks are {list(self.tasks)}")
            if len(keys) != self.sizes[task]:
                raise ValueError(
                    f"example_keys[{task!r}] has {len(keys)} entries but the task has {self.sizes[task]} examples"
                )
            checked[task] = [_as_key_set(task, i, k) for i, k in enumerate(keys)]
        return checked


def _separate_duplicates(batches: list[np.ndarray], key_sets: list[frozenset]) -> None:
    """Swap examples between batches (in place) until no batch holds two examples sharing a key, where
    possible. A clash is swapped with the first example of a later batch that fits, else with one of an
    earlier batch where both sides fit; with no such example the clash stays."""
    for b, batch in enumerate(batches):
        seen: set = set()
        for pos in range(len(batch)):
            if key_sets[batch[pos]] & seen:
                _swap_out(batches, b, pos, seen, key_sets)
            seen |= key_sets[batch[pos]]


def _swap_out(batches, b, pos, seen, key_sets) -> None:
    clashing = key_sets[batches[b][pos]]
    for other in range(b + 1, len(batches)):  # later batches get checked when their turn comes
        for q, candidate in enumerate(batches[other]):
            if not key_sets[candidate] & seen:
                batches[b][pos], batches[other][q] = candidate, batches[b][pos]
                return
    for other in range(b):  # earlier batches are final: the clash must fit there too
        counts = Counter(k for i in batches[other] for k in key_sets[i])
        for q, candidate in enumerate(batches[other]):
            leaving = key_sets[candidate]
            if not leaving & seen and all(counts[k] == (k in leaving) for k in clashing):
                batches[b][pos], batches[other][q] = candidate, batches[b][pos]
                return


def _as_key_set(task: str, index: int, key) -> frozenset:
    """A tuple/list/set is a collection of keys (e.g. a pair's two sentences); anything else is one key."""
    keys = frozenset(key) if isinstance(key, (tuple, list, set, frozenset)) else frozenset([key])
    for k in keys:
        if not isinstance(k, Hashable):
            raise TypeError(f"example_keys[{task!r}][{index}] holds an unhashable key {k!r}")
    return keys


def _check_sizes(sizes: Mapping[str, int]) -> dict:
    if not isinstance(sizes, Mapping) or not sizes:
        raise ValueError(f"sizes must be a non-empty mapping of task name to number of examples, got {sizes!r}")
    for task, n in sizes.items():
        if not isinstance(task, str):
            raise TypeError(f"task names must be strings, got {task!r}")
        _check_int(f"sizes[{task!r}]", n, minimum=1)
    return dict(sizes)


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
