"""Hand-worked checks for forgetless.metrics.intervals."""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import pytest

from forgetless.metrics.intervals import (
    PairedDelta,
    accuracy_interval,
    bootstrap_indices,
    bootstrap_interval,
    mcnemar_exact,
    mean_stderr,
    normal_interval,
    paired_accuracy_delta,
    paired_mean_delta,
)


def pairs(b: int, c: int, both_right: int = 0, both_wrong: int = 0) -> tuple[list[int], list[int]]:
    """0/1 before/after lists with b right->wrong and c wrong->right pairs."""
    before = [1] * b + [0] * c + [1] * both_right + [0] * both_wrong
    after = [0] * b + [1] * c + [1] * both_right + [0] * both_wrong
    return before, after


def test_mean_stderr_matches_binomial_formula() -> None:
    # p = 0.75, n = 4: sample sd = sqrt((3 * 0.0625 + 0.5625) / 3) = 0.5,
    # so stderr = 0.5 / 2 = 0.25, which equals
    # sqrt(p(1-p)/(n-1)) = sqrt(0.1875 / 3) = 0.25.
    assert mean_stderr([1, 0, 1, 1]) == pytest.approx(0.25)
    assert mean_stderr([1, 0, 1, 1]) == pytest.approx(math.sqrt(0.75 * 0.25 / 3))


def test_mean_stderr_single_value_is_nan() -> None:
    assert math.isnan(mean_stderr([0.7]))


def test_normal_interval() -> None:
    z = NormalDist().inv_cdf(0.975)  # 1.959964...
    assert normal_interval(0.5, 0.1) == pytest.approx((0.5 - 0.1 * z, 0.5 + 0.1 * z))
    assert normal_interval(0.5, 0.0) == (0.5, 0.5)
    assert all(math.isnan(x) for x in normal_interval(0.5, float("nan")))


def test_bootstrap_interval_percentiles() -> None:
    # 0..100: the 5% and 95% quantiles are exactly 5 and 95.
    assert bootstrap_interval(np.arange(101), level=0.9) == pytest.approx((5.0, 95.0))


def test_bootstrap_indices_shape_range_and_seed() -> None:
    idx = bootstrap_indices(7, n_boot=50, seed=3)
    assert idx.shape == (50, 7)
    assert idx.min() >= 0 and idx.max() <= 6
    np.testing.assert_array_equal(idx, bootstrap_indices(7, n_boot=50, seed=3))
    assert not np.array_equal(idx, bootstrap_indices(7, n_boot=50, seed=4))


def test_paired_mean_delta_hand_example() -> None:
    # before mean 0.75, after mean 1.0: delta 0.25, relative 0.25 / 0.75 = 1/3.
    # Differences [0, 1, 0, 0]: sd 0.5, stderr 0.5 / 2 = 0.25; t(3) 97.5% quantile 3.18245 gives
    # 0.25 -+ 0.79561, and t = 1 gives the two-sided p 0.39100 (Student's t tables).
    result = paired_mean_delta([1, 0, 1, 1], [1, 1, 1, 1])
    assert isinstance(result, PairedDelta)
    assert (result.before, result.after, result.delta) == pytest.approx((0.75, 1.0, 0.25))
    assert result.relative == pytest.approx(1 / 3)
    assert result.stderr == pytest.approx(0.25)
    assert (result.low, result.high) == pytest.approx((0.25 - 0.795612, 0.25 + 0.795612), abs=1e-6)
    assert result.p_value == pytest.approx(0.391002, abs=1e-6) and result.n == 4
    assert result.test == {"kind": "paired_mean", "estimate": 0.25, "sd": 0.5, "n": 4}


def test_paired_mean_delta_relative_nan_when_before_zero() -> None:
    assert math.isnan(paired_mean_delta([0, 0], [1, 0]).relative)


def test_mcnemar_hand_examples() -> None:
    # b=0, c=5: P[X <= 0] = 1/32, two-sided 2/32 = 0.0625.
    assert mcnemar_exact(*pairs(0, 5, both_right=3)) == pytest.approx(0.0625)
    # b=3, c=3: P[X <= 3] for Bin(6, .5) = 42/64 > 1/2, so p is capped at 1.
    assert mcnemar_exact(*pairs(3, 3)) == 1.0
    # b=1, c=4: P[X <= 1] = (1 + 5)/32, two-sided 12/32 = 0.375.
    assert mcnemar_exact(*pairs(1, 4)) == pytest.approx(0.375)
    assert mcnemar_exact(*pairs(0, 0, both_right=2, both_wrong=2)) == 1.0


def test_mcnemar_large_counts_are_exact_and_symmetric() -> None:
    p = mcnemar_exact(*pairs(1500, 1600))
    assert 0.0 < p < 1.0
    assert p == mcnemar_exact(*pairs(1600, 1500))
    # 2 / 2**2000 underflows to 0.0 instead of raising OverflowError.
    assert mcnemar_exact(*pairs(0, 2000)) == 0.0


def test_paired_accuracy_delta_is_tighter_than_independent_intervals() -> None:
    # 400 items; 240 right before; after = before plus 20 fixed items, nothing broken.
    # True delta = 20 / 400 = 0.05; the score test at 0 is McNemar's z = 20 / sqrt(20).
    before = [1] * 240 + [0] * 160
    after = [1] * 260 + [0] * 140
    result = paired_accuracy_delta(before, after)
    assert result.delta == pytest.approx(0.05)
    assert 0 < result.low <= 0.05 <= result.high
    assert result.p_value == pytest.approx(2 * NormalDist().cdf(-math.sqrt(20)))
    assert result.test == {"kind": "paired_binary", "lost": 0, "gained": 20, "n": 400}
    # Two independent 95% normal intervals around each accuracy, combined.
    z = NormalDist().inv_cdf(0.975)
    se_independent = math.hypot(mean_stderr(before), mean_stderr(after))
    assert result.high - result.low < 0.5 * (2 * z * se_independent)


def test_paired_accuracy_verdict_and_p_value_agree() -> None:
    # The case: 4 of 100 items right -> wrong, none back. The interval excludes zero exactly
    # when the p-value of the same statistic is below 5%, here both (McNemar's z = 2, p = 0.0455).
    result = paired_accuracy_delta(*pairs(4, 0, both_right=56, both_wrong=40))
    assert result.high < 0 and result.p_value < 0.05
    assert result.p_value == pytest.approx(2 * NormalDist().cdf(-2.0))
    three = paired_accuracy_delta(*pairs(3, 0, both_right=57, both_wrong=40))
    assert three.high > 0 and three.p_value > 0.05


def test_accuracy_interval_is_wilson() -> None:
    # 58 of 100: Wilson's centre (58 + z^2/2) / (100 + z^2), half-width
    # z * sqrt(p(1-p)/n + z^2/(4n^2)) / (1 + z^2/n).
    z = NormalDist().inv_cdf(0.975)
    p, n = 0.58, 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    mean, stderr, low, high = accuracy_interval([1] * 58 + [0] * 42)
    assert mean == pytest.approx(0.58) and stderr == pytest.approx(mean_stderr([1] * 58 + [0] * 42))
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-12)
    # All right: the normal interval is [1, 1]; Wilson's reaches below.
    assert accuracy_interval([1] * 20)[2] == pytest.approx(20 / (20 + z * z), abs=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mean_stderr([]), "values is empty"),
        (lambda: mean_stderr([[1.0, 2.0]]), r"values must be 1-D, got shape \(1, 2\)"),
        (lambda: mean_stderr([1.0, float("nan")]), "values contains NaN"),
        (
            lambda: mean_stderr([[1.0], [1.0, 2.0]]),
            "values must be a 1-D sequence of numbers",
        ),
        (
            lambda: normal_interval(0.5, 0.1, level=1.0),
            "level must be strictly between 0 and 1",
        ),
        (lambda: normal_interval(0.5, -0.1), "stderr must be finite and >= 0"),
        (lambda: normal_interval(float("nan"), 0.1), "value must be finite"),
        (lambda: bootstrap_interval([]), "stat_samples is empty"),
        (lambda: bootstrap_interval([1.0, 2.0], level=0), "level must be"),
        (lambda: bootstrap_indices(0), "n must be an integer >= 1"),
        (lambda: bootstrap_indices(2.5), "n must be an integer >= 1"),  # type: ignore[arg-type]
        (lambda: bootstrap_indices(5, n_boot=0), "n_boot must be an integer >= 1"),
        (
            lambda: paired_mean_delta([1, 0], [1, 0, 1]),
            "same items: got lengths 2 and 3",
        ),
        (lambda: paired_mean_delta([], []), "before is empty"),
        (lambda: paired_mean_delta([1, 0], [1, float("nan")]), "after contains NaN"),
        (lambda: mcnemar_exact([1, 2], [1, 0]), "before_correct must contain only 0/1"),
        (lambda: mcnemar_exact([1, 0], [1]), "same items"),
        (
            lambda: paired_accuracy_delta([1, 0], [0.5, 1]),
            "after_correct must contain only 0/1",
        ),
    ],
)
def test_value_errors(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
