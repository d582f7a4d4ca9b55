"""Training rows split into k folds, for out-of-fold distillation teachers.

A teacher trained on every fold but one predicts the rows of the fold it never saw; k such teachers together
give every training row a prediction from a model that did not train on it (`minbert distill
--fold_teachers`). The split must be the same in every run that shares it, so it depends only on the number
of rows, k and a seed.
"""
import numpy as np


def assign_folds(num_rows, num_folds, seed=0):
    """Each row's fold (0 .. num_folds − 1): a seeded permutation dealt round-robin, so fold sizes differ by at
    most one."""
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}")
    if num_rows < num_folds:
        raise ValueError(f"{num_rows} rows cannot fill {num_folds} folds")
    folds = np.empty(num_rows, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(num_rows)] = np.arange(num_rows) % num_folds
    return folds


def rows_outside_fold(num_rows, num_folds, held_out_fold, seed=0):
    """The indices, in order, of the rows a model trains on when `held_out_fold` is left out."""
    if not 0 <= held_out_fold < num_folds:
        raise ValueError(f"held_out_fold must lie in 0 .. {num_folds - 1}, got {held_out_fold}")
    return np.flatnonzero(assign_folds(num_rows, num_folds, seed) != held_out_fold)


__all__ = ["assign_folds", "rows_outside_fold"]
