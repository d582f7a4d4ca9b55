"""Task metrics as `evaluate` modules shipped in this package, and the two overall scores of the seeds.

The metric scripts live at `hf_minbert/metrics/<name>/<name>.py` and are loaded by local path: the Hub's
metric scripts cannot be fetched offline, and a local path also pins exactly the code that scored a run.
"""
import functools
from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("accuracy", "correlation")


def metric_path(name: str) -> Path:
    """Path of the shipped metric script `name` (one of METRIC_NAMES)."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; shipped metrics: {', '.join(METRIC_NAMES)}")
    return METRICS_DIR / name / f"{name}.py"


@functools.cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """The shipped metric `name`, loaded once per process with `evaluate.load(<local path>)`."""
    # keep_in_memory: no arrow cache files under ~/.cache for a computation this small.
    return evaluate.load(str(metric_path(name)), keep_in_memory=True)


def leaderboard_score(sst_accuracy: float, para_accuracy: float, sts_pearson: float) -> float:
    """The CS224N leaderboard's overall score: STS's r in [-1, 1] is mapped to [0, 1] before averaging.

    Seed 000 reports 0.797 from SST 0.557, PARA 0.896, STS r 0.876.
    """
    return (sst_accuracy + para_accuracy + (sts_pearson + 1) / 2) / 3


def mean_score(sst_accuracy: float, para_accuracy: float, sts_pearson: float) -> float:
    """The plain mean of the three task metrics (seed 002's 78.61 from 54.75, 90.25 and 90.83)."""
    return (sst_accuracy + para_accuracy + sts_pearson) / 3


OVERALL_TASKS = ("sst", "para", "sts")  # the leaderboard's "overall" and "mean" need all three


def tasks_overall(metrics_by_task: dict) -> float:
    """The leaderboard score over whichever tasks were scored: the mean of their accuracies and of (r + 1) / 2 for
    a correlation task. Over sst, para and sts it is `leaderboard_score`; unlike it, it exists for any tasks."""
    parts = [(m["pearson"] + 1) / 2 if "pearson" in m else m["accuracy"]
             for m in metrics_by_task.values() if isinstance(m, dict)]
    return sum(parts) / len(parts)


def with_overall_scores(metrics_by_task: dict) -> dict:
    """`metrics_by_task` plus "overall" (leaderboard) and "mean" when sst, para and sts are all present.

    With any of the three missing the overall scores are undefined and left out rather than faked.
    """
    result = dict(metrics_by_task)
    if all(task in result for task in OVERALL_TASKS):
        parts = (result["sst"]["accuracy"], result["para"]["accuracy"], result["sts"]["pearson"])
        result["overall"] = leaderboard_score(*parts)
        result["mean"] = mean_score(*parts)
    return result


__all__ = [
    "METRIC_NAMES",
    "metric_path",
    "load_metric",
    "OVERALL_TASKS",
    "leaderboard_score",
    "mean_score",
    "tasks_overall",
    "with_overall_scores",
]
