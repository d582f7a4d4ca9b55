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
                   With ``epoch_passes``, a small task (STS beside 50k other rows) reads its examples
                   that many times an epoch, each pass in its own order (length-grouped pass by pass,
                   no batch holding a row twice): up-sampled, where a cap down-samples.
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

Token budget: with `token_budget[task]` (`proportional` and `sequential`; needs the task's lengths), a batch
of that task holds at least a global batch of rows and more while its rows times its longest row stay within
the budget, so a batch of short rows (SST's treebank phrases) carries as many tokens as one of long rows, in
one optimizer step instead of several. Each epoch is cut into the number of batches the budget gives epoch 0
(`SamplingCore._packed`), so every epoch has the same number of steps, as Trainer's schedule needs.

No duplicates: with `example_keys[task]` (one entry per example: a key, or a tuple/list/set of keys, e.g.
both sentences of a pair), examples sharing a key are moved apart by swapping them with examples of other
batches of the same task and epoch, so in-batch negatives of the MNR loss are not copies of the positive.
Batch sizes and the task schedule are unchanged; a duplicate that no swap can remove (too many copies for
the task's batches) stays, and the MNR loss's false-negative mask covers it.

Where it lives: this module is the public face (arguments, plan cache, epochs, ranks);
`sampling_core.py` the shared core (random streams, caps, batches, tail, length grouping, duplicates);
`sampling_strategies.py` one small function per strategy; `sampling_checks.py` the argument checks.
"""

from collections.abc import Mapping, Sequence
from functools import partial
from typing import NamedTuple, Optional, Union

import numpy as np
from torch.utils.data import Sampler

from .sampling_checks import (
    check_applies,
    check_int,
    checked_always_rows,
    checked_epoch_passes,
    checked_keys,
    checked_lengths,
    checked_sizes,
    checked_splits,
    checked_temperature,
    checked_token_budget,
    per_task_ints,
)
from .sampling_core import LENGTH_GROUP_BATCHES, SamplingCore
from .sampling_strategies import DEFAULT_TEMPERATURE, STRATEGIES

SAMPLING_STRATEGIES = tuple(STRATEGIES)  # sequential, round_robin, proportional, temperature, equal_split, all_tasks
CAPPED_STRATEGIES = ("sequential", "proportional")  # the strategies that honour epoch_rows and epoch_passes

__all__ = ["DEFAULT_TEMPERATURE", "LENGTH_GROUP_BATCHES", "SAMPLING_STRATEGIES", "MultitaskBatchSampler", "TaskBatch"]


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
            computing p_i and the epoch's steps.
        num_splits: `equal_split` only: parts per task (a mapping), or an int for the largest task; None
            picks ceil(n_largest / n_second_largest) for the largest task.
        example_keys: per task, one key (or collection of keys) per example; those tasks' batches avoid
            repeated keys.
        lengths: per task, the token count of each example; those tasks' batches are length-grouped.
        epoch_rows: `sequential` and `proportional` only: per task, the most examples it gives an epoch
            (an int for every task, or per task).
        always_rows: with `epoch_rows`, per task: how many of its first examples every epoch reads whole;
            the task's cap then draws only from the examples after them.
        epoch_passes: `sequential` and `proportional` only: per task (or an int for every task), how many
            times an epoch reads each of its examples (default 1); not for a task with `epoch_rows`.
        token_budget: `sequential` and `proportional` only, tasks with `lengths`: per task (or an int for
            every task), the padded tokens (rows × longest row) up to which a global batch takes more than
            `batch_size × num_replicas` rows. Not with drop_last.
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
        token_budget: Union[int, Mapping[str, int], None] = None,
        epoch_passes: Union[int, Mapping[str, int], None] = None,
    ):
        self.sizes = checked_sizes(sizes)
        self.tasks = tuple(self.sizes)
        check_int("batch_size", batch_size, minimum=1)
        check_int("seed", seed, minimum=0)
        check_int("num_replicas", num_replicas, minimum=1)
        check_int("rank", rank, minimum=0)
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
        check_applies("temperature", temperature, ("temperature",), strategy)
        check_applies("size_cap", size_cap, ("temperature",), strategy)
        check_applies("num_splits", num_splits, ("equal_split",), strategy)
        self.temperature = checked_temperature(temperature, DEFAULT_TEMPERATURE)
        self.size_cap = per_task_ints("size_cap", size_cap, None, self.tasks)
        self.num_splits = checked_splits(num_splits, self.sizes)
        check_applies("epoch_rows", epoch_rows, CAPPED_STRATEGIES, strategy)
        self.epoch_rows = per_task_ints("epoch_rows", epoch_rows, None, self.tasks)
        self.always_rows = checked_always_rows(always_rows or {}, self.sizes)
        check_applies("epoch_passes", epoch_passes, CAPPED_STRATEGIES, strategy)
        self.epoch_passes = checked_epoch_passes(epoch_passes, self.tasks, self.epoch_rows)
        self.example_keys = checked_keys(example_keys or {}, self.sizes)
        self.lengths = checked_lengths(lengths or {}, self.sizes)
        check_applies("token_budget", token_budget, CAPPED_STRATEGIES, strategy)
        self.token_budget = checked_token_budget(token_budget, self.tasks, self.lengths, drop_last)
        self.offsets = dict(zip(self.tasks, np.cumsum([0, *self.sizes.values()])[:-1].tolist()))
        self.epoch = 0
        self._core = SamplingCore(
            self.sizes, self.global_batch_size, seed=seed, num_replicas=num_replicas, rank=rank, drop_last=drop_last,
            epoch_rows=self.epoch_rows, always_rows=self.always_rows, example_keys=self.example_keys,
            lengths=self.lengths, token_budget=self.token_budget, epoch_passes=self.epoch_passes,
        )
        options = {"temperature": {"temperature": self.temperature, "size_cap": self.size_cap},
                   "equal_split": {"num_splits": self.num_splits}}
        self._build_plan = partial(STRATEGIES[strategy], **options.get(strategy, {}))
        self._cached_plan: tuple[int, list[tuple[TaskBatch, ...]]] = (-1, [])
        if len(self.plan(0)) == 0:
            raise ValueError(
                f"strategy {strategy!r} with drop_last=True makes no step for task sizes {dict(self.sizes)}: "
                f"no global batch of {self.global_batch_size} examples is ever filled"
            )
        # A task too small for one global batch would silently never train, yet still be evaluated.
        planned = {batch.task for step in self.plan(0) for batch in step}
        unplanned = [task for task in self.tasks if task not in planned]
        if unplanned:
            raise ValueError(
                f"strategy {strategy!r} with drop_last=True gives task(s) {', '.join(unplanned)} no step: "
                f"{', '.join(f'{task} has {self.sizes[task]} examples' for task in unplanned)}, fewer than a global "
                f"batch of {self.global_batch_size}; keep last batches (drop_last=False) or lower the batch size"
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan `__iter__` yields (Trainer/accelerate call this every epoch)."""
        check_int("epoch", epoch, minimum=0)
        self.epoch = epoch

    def __iter__(self):
        for step in self.plan(self.epoch):
            yield [index for batch in step for index in self._core.rank_share(batch.indices).tolist()]

    def __len__(self) -> int:
        """Steps per epoch; the same for every epoch and every rank."""
        return len(self.plan(self.epoch))

    def rows_per_epoch(self, epoch: Optional[int] = None) -> int:
        """The rows all ranks read in `epoch` (default: the current one): what a cap, passes or a strategy's
        epoch length make of the tasks' rows, a tail padded for the ranks included."""
        return sum(len(batch.indices) for step in self.plan(self.epoch if epoch is None else epoch) for batch in step)

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
            steps = self._build_plan(self._core, epoch)
            steps = [tuple(TaskBatch(t, b + self.offsets[t]) for t, b in step) for step in steps]
            self._cached_plan = (epoch, steps)
        return self._cached_plan[1]
