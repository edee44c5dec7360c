"""Uncertainty for before/after comparisons: standard errors, intervals, paired tests.

All functions are pure and work on plain numbers or 1-D arrays. "Paired" means
``before[i]`` and ``after[i]`` are scores of the same item, so resampling keeps
pairs together and the shared per-item difficulty cancels out of the delta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from forgetless.metrics.paired_tests import (
    BOOTSTRAP_MIN,
    BootstrapMeanTest,
    PairedBinaryTest,
    PairedMeanTest,
    PairedTest,
    data_seed,
    wilson_interval,
)


@dataclass(frozen=True)
class PairedDelta:
    """A before/after comparison on the same items.

    Attributes:
        before: Aggregate score before (e.g. accuracy, perplexity).
        after: Aggregate score after.
        delta: ``after - before``; its meaning (good or bad) depends on the metric.
        relative: ``delta / before``; ``nan`` when ``before == 0``.
        low: Lower end of the interval for ``delta``.
        high: Upper end of the interval for ``delta``.
        stderr: Standard error of ``delta``.
        p_value: Two-sided p-value for "no change", or ``None`` when not computed.
        n: Number of paired items.
        test: The saved test (`metrics.paired_tests`) that gave the interval and the p-value, so the
            change can be judged again at another level or against a limit; None for bootstraps.
    """

    before: float
    after: float
    delta: float
    relative: float
    low: float
    high: float
    stderr: float
    p_value: float | None
    n: int
    test: dict[str, Any] | None = None


def _as_vector(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``values`` as a non-empty, finite, 1-D float array or raise ValueError."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:  # ragged lists, strings, ...
        raise ValueError(f"{name} must be a 1-D sequence of numbers: {err}") from err
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; expected at least one value")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_paired(before: ArrayLike, after: ArrayLike) -> tuple[NDArray, NDArray]:
    b, a = _as_vector(before, "before"), _as_vector(after, "after")
    if b.shape != a.shape:
        raise ValueError(f"before and after must score the same items: got lengths {b.size} and {a.size}")
    return b, a


def _check_level(level: float) -> float:
    # `not 0 < x < 1` is also True for NaN, so NaN is rejected here too.
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    return float(level)


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def mean_stderr(values: ArrayLike) -> float:
    """Standard error of the mean, as lm-evaluation-harness computes it.

    Defined as ``std(values, ddof=1) / sqrt(n)``. For 0/1 accuracy ``p`` this
    equals ``sqrt(p * (1 - p) / (n - 1))``.

    Args:
        values: 1-D array of per-item scores.

    Returns:
        The standard error; ``nan`` when ``n == 1`` (no spread can be estimated).
    """
    arr = _as_vector(values, "values")
    if arr.size == 1:
        return float("nan")
    return float(np.std(arr, ddof=1) / math.sqrt(arr.size))


def normal_interval(value: float, stderr: float, level: float = 0.95) -> tuple[float, float]:
    """Normal-approximation interval ``value -/+ z * stderr``.

    ``z`` is the ``(1 + level) / 2`` quantile of the standard normal (1.96 for 95%).
    A ``nan`` stderr (as from :func:`mean_stderr` with one item) gives ``(nan, nan)``.
    """
    level = _check_level(level)
    if not math.isfinite(value):
        raise ValueError(f"value must be finite, got {value!r}")
    if math.isnan(stderr):
        return float("nan"), float("nan")
    if not (math.isfinite(stderr) and stderr >= 0):
        raise ValueError(f"stderr must be finite and >= 0, got {stderr!r}")
    z = NormalDist().inv_cdf((1.0 + level) / 2.0)
    return float(value - z * stderr), float(value + z * stderr)


def accuracy_interval(correct: ArrayLike, level: float = 0.95) -> tuple[float, float, float | None, float | None]:
    """Mean of 0/1 scores with lm-eval's standard error and Wilson's score interval.

    Wilson's interval keeps its level near 0 and 1 and on few items, where the normal one
    (mean +- z * stderr) is too narrow and leaves [0, 1]. Returns (mean, stderr, low, high); the
    interval is None for a single item.
    """
    values = _as_binary(correct, "correct")
    mean, stderr = float(values.mean()), mean_stderr(values.astype(np.float64))
    if len(values) < 2:
        return mean, stderr, None, None
    low, high = wilson_interval(int(values.sum()), int(values.size), _check_level(level))
    return mean, stderr, low, high


def bootstrap_interval(stat_samples: ArrayLike, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates.

    Returns the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles, with
    numpy's default linear interpolation.
    """
    level = _check_level(level)
    samples = _as_vector(stat_samples, "stat_samples")
    low, high = np.quantile(samples, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)


def bootstrap_indices(n: int, n_boot: int = 10_000, seed: int = 0) -> NDArray[np.int64]:
    """Resampling indices of shape ``(n_boot, n)``, drawn from ``range(n)``.

    Drawn with replacement by ``np.random.default_rng(seed).integers``. Row ``r``
    picks the items of replicate ``r``; using the same matrix for ``before`` and
    ``after`` is what makes the bootstrap paired.
    """
    n, n_boot = _check_positive_int(n, "n"), _check_positive_int(n_boot, "n_boot")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n), dtype=np.int64)


def paired_mean_delta(before: ArrayLike, after: ArrayLike, level: float = 0.95) -> PairedDelta:
    """Change in mean score on the same items: the t statistic of the per-item differences.

    ``delta = mean(after) - mean(before)``; ``stderr`` is :func:`mean_stderr` of ``after - before``;
    the interval and the two-sided ``p_value`` come from the same statistic, referred to Student's t
    (:class:`~forgetless.metrics.paired_tests.PairedMeanTest`) below 20 items, and to its studentized
    bootstrap distribution (:class:`~forgetless.metrics.paired_tests.BootstrapMeanTest`, 10,000
    resamples, robust in the tails) from 20 items.
    """
    b, a = _check_paired(before, after)
    diffs = a - b
    sd = float(np.std(diffs, ddof=1)) if diffs.size > 1 else float("nan")
    test: PairedTest = PairedMeanTest(float(diffs.mean()), sd, int(diffs.size))
    if diffs.size >= BOOTSTRAP_MIN and sd > 0:  # robust tails for the budget's small levels
        test = BootstrapMeanTest(test.estimate, sd, test.n, tuple(diffs.tolist()), seed=data_seed(b, a))
    return _from_test(float(b.mean()), float(a.mean()), test, mean_stderr(diffs), level)


def _from_test(mean_b: float, mean_a: float, test: PairedTest, stderr: float, level: float) -> PairedDelta:
    low, high = test.interval(_check_level(level))
    delta = mean_a - mean_b
    return PairedDelta(
        before=mean_b,
        after=mean_a,
        delta=delta,
        relative=delta / mean_b if mean_b != 0 else float("nan"),
        low=low,
        high=high,
        stderr=stderr,
        p_value=test.p_value(0.0),
        n=test.n,
        test=test.to_dict(),
    )


def _as_binary(values: ArrayLike, name: str) -> NDArray[np.bool_]:
    arr = _as_vector(values, name)
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must contain only 0/1 (or bool) correctness values")
    return arr.astype(bool)


def mcnemar_exact(before_correct: ArrayLike, after_correct: ArrayLike) -> float:
    """Exact two-sided McNemar p-value for paired 0/1 outcomes.

    With discordant counts ``b`` (right before, wrong after) and ``c`` (wrong
    before, right after), ``p = min(1, 2 * P[X <= min(b, c)])`` where
    ``X ~ Binomial(b + c, 1/2)``. Returns 1.0 when ``b + c == 0``.
    """
    b_arr, a_arr = _check_paired(before_correct, after_correct)
    before_ok = _as_binary(b_arr, "before_correct")
    after_ok = _as_binary(a_arr, "after_correct")
    b = int(np.sum(before_ok & ~after_ok))
    c = int(np.sum(~before_ok & after_ok))
    m = b + c
    if m == 0:
        return 1.0
    # Integer binomial sums are exact; a Fraction avoids float overflow of
    # comb(m, i) and 2**m when m runs into the thousands.
    tail = sum(math.comb(m, i) for i in range(min(b, c) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**m)))


def paired_accuracy_delta(before_correct: ArrayLike, after_correct: ArrayLike, level: float = 0.95) -> PairedDelta:
    """Accuracy change on the same items: Tango's score interval and its p-value.

    Inputs are per-item 0/1 correctness; ``delta > 0`` means accuracy improved. The interval and the
    two-sided ``p_value`` (McNemar's z at a null of zero) come from one statistic
    (:class:`~forgetless.metrics.paired_tests.PairedBinaryTest`); ``stderr`` is lm-eval's of the
    per-item differences. :func:`mcnemar_exact` remains for the exact conditional p-value.
    """
    b_arr, a_arr = _check_paired(before_correct, after_correct)
    before_ok = _as_binary(b_arr, "before_correct")
    after_ok = _as_binary(a_arr, "after_correct")
    lost, gained = int(np.sum(before_ok & ~after_ok)), int(np.sum(~before_ok & after_ok))
    test = PairedBinaryTest(lost=lost, gained=gained, n=int(b_arr.size))
    return _from_test(float(b_arr.mean()), float(a_arr.mean()), test, mean_stderr(a_arr - b_arr), level)


def paired_binary_delta(before: float, lost: int, gained: int, n: int, level: float = 0.95) -> PairedDelta:
    """`paired_accuracy_delta` from its sufficient statistics: accuracy `before` on `n` items, of which
    `lost` went right -> wrong and `gained` wrong -> right (the same Tango test, the same stderr)."""
    test = PairedBinaryTest(lost=lost, gained=gained, n=n)
    diff_mean = (gained - lost) / n
    second = (gained + lost) / n  # mean of squared per-item differences (each -1, 0 or 1)
    stderr = math.sqrt(max(0.0, second - diff_mean**2) * n / (n - 1) / n) if n > 1 else math.nan
    return _from_test(before, before + diff_mean, test, stderr, level)
