"""Continual-learning metrics on an accuracy matrix.

The matrix ``R`` has ``T + 1`` rows and ``T`` columns: row 0 is the base model
before any training, row ``i`` (1..T) is the model after training stage ``i``,
and column ``j - 1`` is the score on task ``j`` (higher is better). So
``R[i][j - 1]`` is "score on task j after stage i", and ``R[j][j - 1]`` is the
score on task j right after training on it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

# A list of T + 1 rows of T scores, or an equivalent 2-D array.
AccuracyMatrix = ArrayLike


def _as_matrix(R: AccuracyMatrix) -> NDArray[np.float64]:
    """Validate ``R`` as a finite ``(T + 1) x T`` matrix with ``T >= 1``."""
    if not isinstance(R, np.ndarray):
        rows = list(R)  # type: ignore[arg-type]
        # Check raggedness ourselves: numpy's error for it does not say which row.
        for i, row in enumerate(rows):
            if np.ndim(row) != 1:
                raise ValueError(f"R must be a list of rows; row {i} is not a 1-D sequence")
            if len(row) != len(rows[0]):
                raise ValueError(f"R must be rectangular: row 0 has {len(rows[0])} columns, row {i} has {len(row)}")
        R = rows
    arr = np.asarray(R, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"R must be a 2-D matrix with at least one column, got shape {arr.shape}")
    T = arr.shape[1]
    if arr.shape[0] != T + 1:
        raise ValueError(
            f"R must have T + 1 = {T + 1} rows (base model + one per stage) for T = {T} tasks, got {arr.shape[0]} rows"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("R contains NaN or infinite values")
    return arr


def _check_scalar(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def average_accuracy(R: AccuracyMatrix) -> float:
    """Mean score over all tasks after the last stage: ``mean_j R[T][j - 1]``."""
    return float(_as_matrix(R)[-1].mean())


def backward_transfer(R: AccuracyMatrix) -> float:
    """Backward transfer (BWT), Lopez-Paz & Ranzato 2017 (GEM).

    ``BWT = 1/(T-1) * sum_{j=1}^{T-1} (R[T][j-1] - R[j][j-1])``: how the score on
    each earlier task moved between just after learning it and the end.
    Negative means forgetting. Returns ``nan`` when ``T == 1`` (no earlier task).
    """
    arr = _as_matrix(R)
    T = arr.shape[1]
    if T == 1:
        return float("nan")
    tasks = np.arange(T - 1)  # column j - 1 for j = 1..T-1
    return float(np.mean(arr[T, tasks] - arr[tasks + 1, tasks]))


def forgetting_per_task(R: AccuracyMatrix) -> list[float]:
    """Forgetting of each earlier task, Chaudhry et al. 2018 (RWalk).

    For ``j = 1..T-1``: ``f_j = max_{l in 1..T-1} R[l][j-1] - R[T][j-1]``, the drop
    from the best score seen during training to the final score. Positive means
    forgetting. As in the paper, the base row 0 is not part of the max, so a
    task the base model already knew is not counted as forgotten unless some
    stage reached that score. (Avalanche's "forgetting" uses ``R[j][j-1]``, the
    score right after training on task j, instead of the max.)

    Returns:
        ``T - 1`` values; empty when ``T == 1``.
    """
    arr = _as_matrix(R)
    T = arr.shape[1]
    if T == 1:
        return []
    best = arr[1:T, : T - 1].max(axis=0)  # stages 1..T-1, tasks 1..T-1
    return [float(x) for x in best - arr[T, : T - 1]]


def forgetting_measure(R: AccuracyMatrix) -> float:
    """Average forgetting ``mean_j f_j`` (see :func:`forgetting_per_task`).

    Positive means forgetting. Returns ``nan`` when ``T == 1``.
    """
    per_task = forgetting_per_task(R)
    return float(np.mean(per_task)) if per_task else float("nan")


def forward_transfer(R: AccuracyMatrix) -> float:
    """Forward transfer (FWT), after Lopez-Paz & Ranzato 2017 (GEM).

    ``FWT = 1/(T-1) * sum_{j=2}^{T} (R[j-1][j-1] - R[0][j-1])``: the score on task
    j just before training on it, relative to the base model. The paper's
    reference is a randomly initialised model; here it is the base model (row 0),
    which is the natural reference when fine-tuning. Positive means earlier
    stages helped later tasks. Returns ``nan`` when ``T == 1``.
    """
    arr = _as_matrix(R)
    T = arr.shape[1]
    if T == 1:
        return float("nan")
    tasks = np.arange(1, T)  # column j - 1 for j = 2..T
    return float(np.mean(arr[tasks, tasks] - arr[0, tasks]))


def delta(before: float, after: float) -> float:
    """Absolute change ``after - before``."""
    return _check_scalar(after, "after") - _check_scalar(before, "before")


def relative_change(before: float, after: float) -> float:
    """Relative change ``(after - before) / |before|``; ``nan`` when ``before == 0``.

    Dividing by ``|before|`` keeps the sign of the change for negative baselines.
    """
    diff = delta(before, after)
    return diff / abs(before) if before != 0 else float("nan")
