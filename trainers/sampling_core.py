"""The shared core of `MultitaskBatchSampler`: what every strategy builds its epochs from.

- random draws, each from its own stream of (seed, tag, ...) so that a plan depends on nothing but its inputs;
- a task's order for an epoch (a fresh permutation, or a window of its endless reshuffled stream when capped);
- cutting an order into global batches: length grouping, the incomplete last batch (dropped or padded for
  the ranks), and moving duplicate keys apart;
- shuffling which task each step serves, and a rank's share of a global batch.
"""

import math
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np

LENGTH_GROUP_BATCHES = 50  # as transformers' LengthGroupedSampler's megabatch multiplier

# Tags that give every random draw its own independent stream (numpy SeedSequence entropy).
EPOCH_ORDER, TASK_STREAM, SPLIT_CUT, STEP_ORDER = 0, 1, 2, 3


class SamplingCore:
    """Task orders and global batches for one seed, world size and rank; the strategies combine them.

    Args are the sampler's, already checked: `epoch_rows` {task: cap or None}, `always_rows`, `epoch_passes`
    {task: passes} (only tasks read more than once an epoch), `example_keys` (key sets per example), `lengths`
    (arrays) and `token_budget` (padded tokens per global batch) for some tasks.
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        global_batch_size: int,
        *,
        seed: int,
        num_replicas: int,
        rank: int,
        drop_last: bool,
        epoch_rows: Mapping[str, Optional[int]],
        always_rows: Mapping[str, int],
        example_keys: Mapping[str, Sequence[frozenset]],
        lengths: Mapping[str, np.ndarray],
        token_budget: Optional[Mapping[str, int]] = None,
        epoch_passes: Optional[Mapping[str, int]] = None,
    ):
        self.sizes, self.tasks = dict(sizes), tuple(sizes)
        self.global_batch_size = global_batch_size
        self.seed, self.num_replicas, self.rank, self.drop_last = seed, num_replicas, rank, drop_last
        self.epoch_rows, self.always_rows = epoch_rows, always_rows
        self.epoch_passes = dict(epoch_passes or {})
        self.example_keys, self.lengths = example_keys, lengths
        self.token_budget = dict(token_budget or {})
        self._packed_batches: dict[str, int] = {}  # task -> its batch count per epoch under a token budget

    def rng(self, *tags) -> np.random.Generator:
        # Tasks are identified by a hash of their name, so reordering the dict does not reshuffle a task.
        entropy = [self.seed, *(zlib.crc32(t.encode()) if isinstance(t, str) else t for t in tags)]
        return np.random.default_rng(entropy)

    # ---- a task's examples for an epoch ----

    def epoch_order(self, task: str, epoch: int) -> np.ndarray:
        return self.rng(EPOCH_ORDER, task, epoch).permutation(self.sizes[task])

    def capped_epoch_order(self, task: str, epoch: int) -> np.ndarray:
        """The task's examples this epoch: all of them, each `epoch_passes` times, or its `always_rows` first
        examples and the next `epoch_rows` of the stream over the others, shuffled together."""
        if task in self.epoch_passes:  # whole passes of the stream, one after another (grouped pass by pass)
            length = self.epoch_passes[task] * self.sizes[task]
            return self.stream(task, start=epoch * length, length=length)
        cap, always = self.epoch_rows[task], self.always_rows.get(task, 0)
        if cap is None or always + cap >= self.sizes[task]:
            return self.epoch_order(task, epoch)
        if always == 0:
            return self.stream(task, start=epoch * cap, length=cap)
        rest = always + self.stream(task, start=epoch * cap, length=cap, first=always)
        return self.rng(EPOCH_ORDER, task, epoch).permutation(np.concatenate([np.arange(always), rest]))

    def stream(self, task: str, start: int, length: int, first: int = 0) -> np.ndarray:
        """Positions [start, start + length) of the endless sequence of reshuffled passes over the task's
        examples from `first` on, as indices relative to `first`."""
        if length == 0:
            return np.empty(0, dtype=np.int64)
        n = self.sizes[task] - first
        tag = (task,) if first == 0 else (task, first)  # a stream over fewer rows draws its own passes
        first_pass, last_pass = start // n, (start + length - 1) // n
        passes = np.concatenate([self.rng(TASK_STREAM, *tag, k).permutation(n) for k in range(first_pass, last_pass + 1)])
        return passes[start - first_pass * n : start - first_pass * n + length]

    # ---- global batches ----

    def num_batches(self, num_examples: int) -> int:
        rounding = math.floor if self.drop_last else math.ceil
        return rounding(num_examples / self.global_batch_size)

    def batches(self, task: str, order: np.ndarray) -> list[np.ndarray]:
        """Cut a task's epoch order into global batches, handling the tail, then separate duplicates."""
        size = self.global_batch_size
        if task in self.lengths:
            order = self._grouped_by_length(task, order)
        if task in self.token_budget:
            batches = self._packed(task, order)
        else:
            batches = [order[i : i + size] for i in range(0, len(order), size)]
        # The tail: short of a global batch, or a packed task's (at least a global batch, the sampler refuses
        # drop_last for it) whose rows do not split evenly over the ranks, which would leave the rest untrained.
        if batches and (len(batches[-1]) < size or len(batches[-1]) % self.num_replicas):
            if self.drop_last:
                batches.pop()
            else:
                missing = -len(batches[-1]) % self.num_replicas
                batches[-1] = np.concatenate([batches[-1], np.resize(order, missing)])
        keys = self.example_keys.get(task)
        # No batch may hold a row twice: an order reads one twice where two passes meet (epoch_passes; a stream
        # window across a pass boundary under temperature, all_tasks or a cap), and length grouping sorts the two
        # copies side by side. Each row is then its own key. A task smaller than a batch repeats rows in every
        # batch: no swap can help it.
        if keys is None and self.sizes[task] >= self.global_batch_size and len(np.unique(order)) < len(order):
            keys = ROW_KEYS
        if keys is not None:
            fits = within_budget(self.lengths[task], self.token_budget[task]) if task in self.token_budget else None
            separate_duplicates(batches, keys, fits)
        return batches

    def _packed(self, task: str, order: np.ndarray) -> list[np.ndarray]:
        """The order (grouped by length) cut into the task's fixed number of batches under its token budget.

        A batch holds at least a global batch of rows, and more while its rows times its longest row stay
        within the budget: short rows (SST's phrases) fill a step with as many tokens as long ones. The count
        is what the budget gives epoch 0; other epochs (whose capped rows differ) are cut into exactly as many
        batches, by the smallest budget that needs no more (then halving the largest where it needs fewer),
        so that every epoch has the same number of steps."""
        lengths = self.lengths[task][order]
        if task not in self._packed_batches:
            first = self.capped_epoch_order(task, 0)
            first_lengths = self.lengths[task][self._grouped_by_length(task, first)]
            self._packed_batches[task] = len(self._next_fit(first_lengths, self.token_budget[task]))
        count = min(self._packed_batches[task], math.ceil(len(order) / self.num_replicas))
        low, high = self.token_budget[task], max(int(lengths.max(initial=1)) * len(order), self.token_budget[task])
        while low < high:  # next-fit needs no more batches for a larger budget: bisect the smallest that fits
            middle = (low + high) // 2
            low, high = (middle + 1, high) if len(self._next_fit(lengths, middle)) > count else (low, middle)
        cuts = self._next_fit(lengths, low)
        while len(cuts) < count:  # halve the batch of most rows (in whole rank shares) until the count is met
            widest = max(range(len(cuts)), key=lambda k: cuts[k][1] - cuts[k][0])
            start, end = cuts[widest]
            if end - start < 2 * self.num_replicas:
                break  # every batch is one rank share: cannot happen for an order as long as epoch 0's
            middle = start + (end - start) // (2 * self.num_replicas) * self.num_replicas
            cuts[widest : widest + 1] = [(start, middle), (middle, end)]
        return [order[start:end] for start, end in cuts]

    def _next_fit(self, lengths: np.ndarray, budget: int) -> list[tuple[int, int]]:
        """(start, end) of consecutive batches: each takes rank shares of rows while it has fewer than a global
        batch or its rows × its longest row stay within `budget`."""
        size, step, total = self.global_batch_size, self.num_replicas, len(lengths)
        cuts, start = [], 0
        while start < total:
            # A row costs at least one token, so no batch past its first global batch holds more than `budget` rows.
            window = min(total - start, max(size, budget))
            longest = np.maximum.accumulate(lengths[start : start + window])
            rows = np.minimum(np.arange(size + step, window + step, step), window)  # the sizes it may grow to
            fitting = rows[rows * longest[rows - 1] <= budget]  # cost grows with rows: the fitting ones come first
            end = start + (int(fitting[-1]) if len(fitting) else min(size, window))
            cuts.append((start, end))
            start = end
        return cuts

    def _grouped_by_length(self, task: str, order: np.ndarray) -> np.ndarray:
        lengths, mega = self.lengths[task], self.global_batch_size * LENGTH_GROUP_BATCHES
        # A task read in several passes is grouped pass by pass: a megabatch across two passes would sort a row
        # beside its own repeat.
        span = self.sizes[task] if task in self.epoch_passes else max(len(order), 1)
        passes = [order[p : p + span] for p in range(0, len(order), span)]
        groups = [part[i : i + mega] for part in passes for i in range(0, len(part), mega)]
        # Stable sort: equal lengths keep their random order.
        return np.concatenate([g[np.argsort(-lengths[g], kind="stable")] for g in groups]) if groups else order

    # ---- steps ----

    def shuffled(self, epoch: int, steps: list) -> list:
        """Shuffle which task each step serves, keeping each task's own batches in their order (so a
        task's stream is read front to back)."""
        order = self.rng(STEP_ORDER, epoch).permutation(len(steps))
        tasks_in_order = [steps[i][0][0] for i in order]
        queues = {task: iter([s for s in steps if s[0][0] == task]) for task in self.tasks}
        return [next(queues[task]) for task in tasks_in_order]

    def rank_share(self, indices: np.ndarray) -> np.ndarray:
        share = len(indices) // self.num_replicas
        return indices[self.rank * share : (self.rank + 1) * share]


class _RowKeys:
    """Every row its own key, made on demand (a list of them would hold one set per row of every task)."""

    def __getitem__(self, row):
        return frozenset((int(row),))


ROW_KEYS = _RowKeys()


def separate_duplicates(batches: list[np.ndarray], key_sets: Sequence[frozenset], fits=None) -> None:
    """Swap examples between batches (in place) until no batch holds two examples sharing a key, where
    possible. A clash is swapped with the first example of a later batch that fits, else with one of an
    earlier batch where both sides fit; with no such example the clash stays. `fits(batches, b, pos, other, q)`:
    whether swapping `batches[b][pos]` with `batches[other][q]` keeps both batches acceptable (a token budget)."""
    for b, batch in enumerate(batches):
        seen: set = set()
        for pos in range(len(batch)):
            if key_sets[batch[pos]] & seen:
                _swap_out(batches, b, pos, seen, key_sets, fits or (lambda *_: True))
            seen |= key_sets[batch[pos]]


def _swap_out(batches, b, pos, seen, key_sets, fits) -> None:
    clashing = key_sets[batches[b][pos]]
    for other in range(b + 1, len(batches)):  # later batches get checked when their turn comes
        for q, candidate in enumerate(batches[other]):
            if not key_sets[candidate] & seen and fits(batches, b, pos, other, q):
                batches[b][pos], batches[other][q] = candidate, batches[b][pos]
                return
    for other in range(b):  # earlier batches are final: the clash must fit there too
        counts = Counter(k for i in batches[other] for k in key_sets[i])
        for q, candidate in enumerate(batches[other]):
            leaving = key_sets[candidate]
            if not leaving & seen and all(counts[k] == (k in leaving) for k in clashing) and fits(batches, b, pos, other, q):
                batches[b][pos], batches[other][q] = candidate, batches[b][pos]
                return


def within_budget(lengths: np.ndarray, budget: int):
    """`separate_duplicates`' test for packed batches: a swap may not take either batch past its token budget
    (rows × longest row), nor past what it already cost where one global batch of rows costs more."""
    def fits(batches, b, pos, other, q):
        for this, leaving, entering in ((b, pos, batches[other][q]), (other, q, batches[b][pos])):
            rows = batches[this]
            cost = len(rows) * int(lengths[rows].max())
            longest = max(int(lengths[np.delete(rows, leaving)].max(initial=0)), int(lengths[entering]))
            if len(rows) * longest > max(budget, cost):
                return False
        return True

    return fits
