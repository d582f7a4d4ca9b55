"""The pairs a paraphrase task's labels imply, as extra training rows.

Being a duplicate is an equivalence: if a ≡ b and b ≡ c then a ≡ c, and if a ≡ b while a ≢ c then b ≢ c.
Quora's duplicate labels join its questions into groups of one meaning (most groups are one labelled pair; a
few popular questions gather dozens), and so label pairs nobody labelled:
- every pair inside a group is a duplicate;
- every pair across two groups that a labelled non-duplicate joins is not.

A group of n questions implies n(n-1)/2 duplicates, so a few large groups would flood the task with a few
topics: a group gives at most `per_question` × n new duplicates, and a labelled non-duplicate at most
`per_question` × (n_a + n_b) new non-duplicates, drawn with `seed`. Never derived: a pair already labelled
(in either order), a pair of the evaluation data (`exclude_pairs`), and any pair touching a group whose own
labels contradict each other (a labelled non-duplicate inside it). Questions are the same when an uncased
BERT reads them alike (`text_form`): the base models are uncased.
"""
import itertools
import random
from dataclasses import dataclass

import datasets

from .schema import ReadReport, label_numbers, task_schema
from .text_form import text_form

IMPLIED_SOURCE = "pairs implied by the labels"


@dataclass(frozen=True)
class ImpliedPairOptions:
    per_question: float = 2.0  # new duplicates a group gives per question in it (0: none derived)
    seed: int = 0  # which pairs a capped group or non-duplicate gives

    def __post_init__(self):
        if not self.per_question >= 0:  # NaN too
            raise ValueError(f"implied pairs per question must be >= 0, got {self.per_question}")


@dataclass
class ImpliedPairsReport(ReadReport):
    """What the labelled pairs implied, and what was left out."""

    labelled_pairs: int = 0
    groups: int = 0  # groups of three or more questions: the ones that imply a duplicate
    largest_group: int = 0
    duplicates: int = 0
    non_duplicates: int = 0
    capped: int = 0  # implied pairs over the per-question cap
    excluded: int = 0  # implied pairs equal to an evaluation pair
    contradictory_groups: int = 0

    def __str__(self):
        line = (f"{self.source}: {self.rows} {self.task} rows from {self.labelled_pairs} labelled pairs: "
                f"{self.duplicates} duplicates inside {self.groups} groups of three or more questions (largest "
                f"{self.largest_group}), {self.non_duplicates} non-duplicates across groups")
        left_out = [(self.capped, "over the per-question cap"), (self.excluded, "equal to an evaluation pair"),
                    (self.contradictory_groups, "groups skipped whose labels contradict each other")]
        return line + "".join(f"; {count} {why}" for count, why in left_out if count)

    def as_dict(self, limit: int = ReadReport.MAX_SHOWN) -> dict:
        summary = super().as_dict(limit)
        summary.update(labelled_pairs=self.labelled_pairs, groups=self.groups, largest_group=self.largest_group,
                       duplicates=self.duplicates, non_duplicates=self.non_duplicates, capped=self.capped,
                       excluded=self.excluded, contradictory_groups=self.contradictory_groups)
        return summary


def implies_pairs(task: str) -> bool:
    """Whether `task`'s labels are an equivalence (duplicate or not) that implies more pairs: a symmetric pair
    task labelled 0 or 1 (para, or one's own such task). Entailment, say, is neither symmetric nor transitive
    in the sense this needs: it implies nothing."""
    schema = task_schema(task)
    return schema.is_pair and schema.symmetric and schema.label_values in ((0, 1), (1, 0))


def question_key(text: str) -> str:
    return text_form(text)


def pair_key(first: str, second: str) -> tuple:
    return tuple(sorted((question_key(first), question_key(second))))


def implied_pairs(rows, *, task: str = "para", options: ImpliedPairOptions = ImpliedPairOptions(),
                  exclude_pairs=()):
    """The pairs `rows` (a task's labelled pairs, duplicate 1.0 / not 0.0) imply, in the task's schema;
    returns `(datasets.Dataset, ImpliedPairsReport)`. exclude_pairs: (sentence1, sentence2) pairs never derived."""
    schema = task_schema(task)
    if not implies_pairs(task):
        raise ValueError(f"implied pairs need a pair task labelled duplicate (1) or not (0), not {task}")
    columns = rows[:]
    first, second = (columns[name] for name in schema.text_columns)
    labels = label_numbers(rows, schema).tolist()  # labels written as text read as their numbers, each checked
    report = ImpliedPairsReport(source=IMPLIED_SOURCE, task=task, labelled_pairs=len(labels))
    groups = _DuplicateGroups(first, second, labels)
    known = {pair_key(a, b) for a, b in zip(first, second)}
    excluded = {pair_key(a, b) for a, b in exclude_pairs}
    rng = random.Random(options.seed)
    report.contradictory_groups = len(groups.contradictory)
    members = groups.members()
    report.groups = sum(len(group) > 2 for group in members)
    report.largest_group = max(map(len, members), default=0)

    def draw(candidates, limit):
        fresh = [pair for pair in candidates if pair not in known]
        allowed = [pair for pair in fresh if pair not in excluded]
        report.excluded += len(fresh) - len(allowed)
        chosen = rng.sample(allowed, min(len(allowed), int(limit)))
        report.capped += len(allowed) - len(chosen)
        known.update(chosen)  # a pair two non-duplicates imply is derived once
        return chosen

    duplicates = []
    for group in members:
        if not groups.is_contradictory(group[0]):
            duplicates += draw(itertools.combinations(group, 2), options.per_question * len(group))
    non_duplicates = []
    for a, b, label in zip(first, second, labels):
        if label == 0.0 and not (groups.is_contradictory(question_key(a)) or groups.is_contradictory(question_key(b))):
            side_a, side_b = groups.group_of(question_key(a)), groups.group_of(question_key(b))
            candidates = (tuple(sorted(pair)) for pair in itertools.product(side_a, side_b))
            non_duplicates += draw(candidates, options.per_question * (len(side_a) + len(side_b)))
    report.duplicates, report.non_duplicates = len(duplicates), len(non_duplicates)
    return _as_rows(schema, groups.texts, duplicates, non_duplicates, report)


class _DuplicateGroups:
    """Questions joined by their duplicate labels (union-find over question keys)."""

    def __init__(self, first, second, labels):
        self.texts, self.parent = {}, {}  # key -> the first text seen for it; key -> parent key
        for a, b, label in zip(first, second, labels):
            for text in (a, b):
                self.texts.setdefault(question_key(text), text)
                self.parent.setdefault(question_key(text), question_key(text))
            if label == 1.0:
                self.parent[self.root(question_key(a))] = self.root(question_key(b))
        self.contradictory = {self.root(question_key(a)) for a, b, label in zip(first, second, labels)
                              if label == 0.0 and self.root(question_key(a)) == self.root(question_key(b))}
        self._members = {}
        for key in sorted(self.parent):
            self._members.setdefault(self.root(key), []).append(key)

    def root(self, key):
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def members(self) -> list:
        """Every group of two or more questions, each sorted, in the order of their first members."""
        return sorted(group for group in self._members.values() if len(group) > 1)

    def group_of(self, key) -> list:
        return self._members[self.root(key)]

    def is_contradictory(self, key) -> bool:
        return self.root(key) in self.contradictory


def _as_rows(schema, texts, duplicates, non_duplicates, report):
    pairs = [(pair, 1.0) for pair in duplicates] + [(pair, 0.0) for pair in non_duplicates]
    first, second = schema.text_columns
    data = {"id": [f"implied-{index}" for index in range(len(pairs))],
            first: [texts[a] for (a, _), _ in pairs], second: [texts[b] for (_, b), _ in pairs],
            schema.label_column: [label for _, label in pairs]}
    report.rows = len(pairs)
    return datasets.Dataset.from_dict(data, features=schema.features(labelled=True)), report
