"""Ensembles of saved multitask minBERT models: greedy forward selection of members per task by dev score,
building the selected ensemble as one model, and loading whichever kind of model a folder holds.

    candidates = {task: [dev predictions of each model]}            (unrounded, from `predict_task`)
    selection = greedy_selection(task, kind, candidates[task], gold)  (per task)
    ensemble = build_ensemble(models_by_name, selections)             -> MinBertEnsembleForMultitask

Greedy forward selection (Caruana et al., 2004), per task as seeds 000 and 002 did it: start from the
task's best single model, then repeatedly add the candidate whose inclusion gives the best dev score of the
averaged predictions, while that score does not drop.

- without replacement (default; seed 002: "only add models if they improve or do not change dev
  performance"): each model joins at most once and members are averaged with equal weights. A candidate
  that leaves the dev score unchanged still joins: averaging one more model costs nothing on dev and
  usually helps on unseen data.
- with replacement (Caruana's variant): a model may be added again, so that its weight is how often it was
  picked; a step must then strictly improve the score (ties would repeat forever).

`average_all` is the plain alternative: every candidate with equal weight. The dev set then chooses
nothing, so the ensemble's dev score is as fair as a single model's.

The dev set both selects and scores the (greedy) ensemble, so its dev score is optimistic: compare it with single
models on held-out data (the test set), as the seeds did. Where there is none, `held_out_scores`
cross-fits: selection runs on part of the dev rows and is scored on the rest, which also measures how much
of an ensemble's dev gain was only the luck of picking on the rows that score it.
"""
from dataclasses import dataclass, field

import numpy as np
from transformers import AutoConfig

from .data.schema import register_saved_schemas, task_schema
from .evaluation import predictions_to_labels, score_task
from .modeling_minbert import MinBertForMultitask
from .modeling_minbert_conversion import hub_kwargs
from .modeling_minbert_ensemble import MinBertEnsembleConfig, MinBertEnsembleForMultitask

# The dev metric that selection maximizes, per metric module.
PRIMARY_METRIC = {"accuracy": "accuracy", "correlation": "pearson"}


def load_multitask_model(path, **kwargs):
    """The saved multitask model in `path`: a `MinBertEnsembleForMultitask` for an ensemble folder, else a
    `MinBertForMultitask` (also from a plain BERT checkpoint, with new heads)."""
    config = AutoConfig.from_pretrained(path, **hub_kwargs(kwargs))  # where the folder is: its config needs that too
    register_saved_schemas(getattr(config, "tasks", None), path)  # its tasks of one's own are read as trained
    if isinstance(config, MinBertEnsembleConfig):
        return MinBertEnsembleForMultitask.from_pretrained(path, **kwargs)
    return MinBertForMultitask.from_pretrained(path, **kwargs)


def average_scores(members_scores, weights=None):
    """The weighted average of unrounded predictions: class-probability rows (N, C), probabilities or
    scores (N,); what `MinBertEnsembleForMultitask` computes from its members' logits."""
    stacked = np.stack([np.asarray(scores, dtype=np.float64) for scores in members_scores])
    weights = np.ones(len(stacked)) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(stacked),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"weights must be {len(stacked)} non-negative numbers with a positive sum, got {weights}")
    return np.tensordot(weights / weights.sum(), stacked, axes=1)


def dev_score(task, kind, scores, gold):
    """The task's primary dev metric (accuracy, or Pearson's r for similarity) of unrounded predictions."""
    metric = task_schema(task).metric
    return score_task(task, predictions_to_labels(scores, kind, task_schema(task).label_range), gold)[PRIMARY_METRIC[metric]]


@dataclass
class Selection:
    """The outcome of greedy selection for one task: how often each candidate was picked (its weight is
    count / total), each candidate's own dev score, and the ensemble's dev score after each pick."""

    task: str
    candidates: list  # names (model folders), in the order given
    single_scores: list
    counts: list
    steps: list = field(default_factory=list)  # [(name added, ensemble dev score after adding)]

    @property
    def score(self):
        return self.steps[-1][1]

    @property
    def weights(self):
        total = sum(self.counts)
        return [count / total for count in self.counts]

    def to_dict(self):
        return {
            "task": self.task,
            "dev_score": self.score,
            "members": {name: weight for name, weight in zip(self.candidates, self.weights) if weight > 0},
            "single_scores": dict(zip(self.candidates, self.single_scores)),
            "steps": [{"added": name, "dev_score": score} for name, score in self.steps],
        }


def greedy_selection(task, kind, candidates, gold, *, names=None, with_replacement=False, max_members=None):
    """Greedy forward selection of ensemble members for `task` (see the module docstring).

    candidates: each candidate model's unrounded dev predictions for the task, rows in `gold`'s order.
    max_members: stop after this many picks (counting repeats); None: until no candidate helps.
    """
    names = _checked_names(task, candidates, gold, names)
    if max_members is not None and max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    singles = [dev_score(task, kind, scores, gold) for scores in candidates]
    best = int(np.argmax(singles))  # the first of equally good models
    selection = Selection(task, names, singles, [0] * len(candidates))
    selection.counts[best] = 1
    selection.steps.append((names[best], singles[best]))
    while max_members is None or sum(selection.counts) < max_members:
        step = _best_addition(task, kind, candidates, gold, selection, with_replacement)
        if step is None:
            break
        index, score = step
        selection.counts[index] += 1
        selection.steps.append((names[index], score))
    return selection


def average_all(task, kind, candidates, gold, *, names=None):
    """Every candidate once, with equal weight, as a `Selection`; its steps are the running average's dev
    score as each candidate joins in the order given (the first step is the first candidate alone)."""
    names = _checked_names(task, candidates, gold, names)
    singles = [dev_score(task, kind, scores, gold) for scores in candidates]
    selection = Selection(task, names, singles, [1] * len(candidates))
    selection.steps = [(names[n - 1], dev_score(task, kind, average_scores(candidates[:n]), gold))
                       for n in range(1, len(candidates) + 1)]
    return selection


# How `minbert ensemble --selection` picks members: name -> function(task, kind, candidates, gold, ...).
SELECTION_METHODS = {"greedy": greedy_selection, "all": average_all}


def _best_addition(task, kind, candidates, gold, selection, with_replacement):
    """(candidate, score) of the best next pick, or None when no pick keeps (or, with replacement,
    raises) the current dev score."""
    current = selection.score
    best = None
    for index in range(len(candidates)):
        if selection.counts[index] and not with_replacement:
            continue
        counts = list(selection.counts)
        counts[index] += 1
        score = dev_score(task, kind, average_scores(candidates, counts), gold)
        if best is None or score > best[1]:
            best = (index, score)
    if best is None or best[1] < current or (with_replacement and best[1] == current):
        return None
    return best


def _checked_names(task, candidates, gold, names):
    """The candidates' names (default: model 0, model 1, …) after checking there is a prediction per dev row."""
    if not candidates:
        raise ValueError(f"task {task!r}: no candidate models")
    names = list(names) if names is not None else [f"model {i}" for i in range(len(candidates))]
    if len(names) != len(candidates):
        raise ValueError(f"task {task!r}: {len(names)} names for {len(candidates)} candidates")
    for name, scores in zip(names, candidates):
        if len(scores) != len(gold):
            raise ValueError(f"task {task!r}: {name} has {len(scores)} dev predictions for {len(gold)} dev rows")
    return names


def member_errors(kind, scores, gold, label_range=None):
    """One model's per-row errors: 1 for a wrong label and 0 for a right one, or prediction − gold for a
    similarity score (the prediction clipped to `label_range`, as it is scored)."""
    labels = np.asarray(predictions_to_labels(scores, kind, label_range))
    if kind == "regression":
        return labels - np.asarray(gold, dtype=np.float64)
    return (labels != np.asarray(gold, dtype=np.int64)).astype(np.float64)


def error_correlation(task, kind, candidates, gold, *, names=None):
    """How alike the candidates err: {"pairs": {"a ~ b": r}, "mean": mean r over the pairs}, r the Pearson
    correlation of two models' per-row errors (`member_errors`). Averaging gains little from models whose errors
    correlate near 1: they are wrong on the same rows. r is None where a model's errors do not vary (it is
    right, or wrong, everywhere); the mean leaves those out and is None without a pair."""
    names = _checked_names(task, candidates, gold, names)
    errors = [member_errors(kind, scores, gold, task_schema(task).label_range) for scores in candidates]
    pairs = {}
    for i in range(len(errors)):
        for j in range(i + 1, len(errors)):
            varies = errors[i].std() > 0 and errors[j].std() > 0
            pairs[f"{names[i]} ~ {names[j]}"] = float(np.corrcoef(errors[i], errors[j])[0, 1]) if varies else None
    defined = [r for r in pairs.values() if r is not None]
    return {"pairs": pairs, "mean": float(np.mean(defined)) if defined else None}


def held_out_scores(task, kind, candidates, gold, *, folds=2, seed=0, method="greedy", **options):
    """(ensemble, best single) dev scores of selection by `method` (see SELECTION_METHODS; `options` go to
    it) on rows it did not see.

    The dev rows are dealt at random into `folds` parts; for each part, selection runs on the other rows,
    and both the ensemble it picks and the candidate it ranks best alone are scored on that part. Each score
    is the mean over the parts, weighted by their sizes (for Pearson's r a mean of per-part correlations).
    """
    if folds < 2:
        raise ValueError(f"held-out scores need at least 2 folds, got {folds}")
    gold = np.asarray(gold)
    if len(gold) < 2 * folds:
        raise ValueError(f"task {task!r}: {len(gold)} dev rows are too few for {folds} folds")
    candidates = [np.asarray(scores) for scores in candidates]
    parts = np.array_split(np.random.default_rng(seed).permutation(len(gold)), folds)
    ensemble = single = 0.0
    for part in parts:
        rest = np.setdiff1d(np.arange(len(gold)), part)
        selection = SELECTION_METHODS[method](task, kind, [scores[rest] for scores in candidates], gold[rest], **options)
        held_out = [scores[part] for scores in candidates]
        ensemble += len(part) * dev_score(task, kind, average_scores(held_out, selection.counts), gold[part])
        single += len(part) * dev_score(task, kind, held_out[int(np.argmax(selection.single_scores))], gold[part])
    return ensemble / len(gold), single / len(gold)


def ensemble_task_weights(selections, names):
    """Members (the names picked for any task, in `names` order) and each task's weights over them."""
    members = [name for name in names if any(name in s.candidates and s.counts[s.candidates.index(name)] for s in selections)]
    weights = {}
    for selection in selections:
        by_name = dict(zip(selection.candidates, selection.weights))
        weights[selection.task] = [by_name.get(name, 0.0) for name in members]
    return members, weights


def build_ensemble(models_by_name, selections, default_task=None):
    """`MinBertEnsembleForMultitask` of the selected members; `models_by_name` maps every picked name to its
    loaded model (a `MinBertForMultitask`)."""
    members, weights = ensemble_task_weights(selections, list(models_by_name))
    return MinBertEnsembleForMultitask.from_members([models_by_name[name] for name in members], weights, default_task)


__all__ = [
    "SELECTION_METHODS",
    "Selection",
    "average_all",
    "average_scores",
    "build_ensemble",
    "dev_score",
    "ensemble_task_weights",
    "error_correlation",
    "greedy_selection",
    "held_out_scores",
    "load_multitask_model",
    "member_errors",
]
