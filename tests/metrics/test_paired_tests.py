"""Paired tests: worked examples, interval and p-value from one statistic, and coverage by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from forgetless.metrics import (
    LogRatioTest,
    PairedBinaryTest,
    PairedMeanTest,
    gold_logprobs,
    gold_margins,
    paired_perplexity_delta,
    paired_test_from_dict,
)
from forgetless.metrics.paired_tests import wilson_interval


def test_tango_worked_example() -> None:
    # Fagerland, Lydersen & Laake (2014), Table 8.6 (Bentur et al. 2009): n12 = 1, n21 = 7, N = 21;
    # Tango's asymptotic score interval for the difference -0.2857 is (-0.5172, -0.0260).
    test = PairedBinaryTest(lost=7, gained=1, n=21)
    assert test.estimate == pytest.approx(-0.285714, abs=1e-6)
    assert test.interval(0.95) == pytest.approx((-0.5172, -0.0260), abs=1e-4)


def test_tango_restricted_estimate_maximizes_the_likelihood() -> None:
    """The closed form of P(lost) under a null delta equals a numeric maximum of the multinomial likelihood."""
    lost, gained, n, null = 9, 3, 80, -0.05

    def negative_loglik(p_lost: float) -> float:
        p_gained = p_lost + null
        return -(
            lost * math.log(p_lost)
            + gained * math.log(p_gained)
            + (n - lost - gained) * math.log(1 - p_lost - p_gained)
        )

    numeric = optimize.minimize_scalar(negative_loglik, bounds=(-null + 1e-9, (1 - null) / 2 - 1e-9), method="bounded")
    p = numeric.x
    expected = (gained - lost - n * null) / math.sqrt(n * (2 * p + null * (1 - null)))
    assert PairedBinaryTest(lost, gained, n).statistic(null) == pytest.approx(expected, rel=1e-5)


def test_at_zero_the_score_test_is_mcnemars_z() -> None:
    test = PairedBinaryTest(lost=14, gained=5, n=300)
    z = (5 - 14) / math.sqrt(19)
    assert test.statistic(0.0) == pytest.approx(z)
    assert test.p_value() == pytest.approx(2 * stats.norm.cdf(-abs(z)))
    assert test.p_value(0.0, "less") == pytest.approx(stats.norm.cdf(z))


def test_no_item_changed_still_has_an_interval() -> None:
    z = stats.norm.ppf(0.975)
    low, high = PairedBinaryTest(0, 0, 100).interval(0.95)
    assert (low, high) == pytest.approx((-z * z / (100 + z * z), z * z / (100 + z * z)), abs=1e-9)


@pytest.mark.parametrize(
    "test",
    [PairedBinaryTest(12, 4, 150), PairedMeanTest(-0.08, 0.4, 60), LogRatioTest(0.03, 0.012, 40, 12.0)],
)
def test_interval_excludes_a_value_exactly_when_its_p_value_is_below_the_level(test) -> None:  # noqa: ANN001
    low, high = test.interval(0.9)
    for null in np.linspace(low - 0.05, high + 0.05, 41):
        inside = low + 1e-9 < null < high - 1e-9
        outside = null < low - 1e-9 or null > high + 1e-9
        p = test.p_value(float(null))
        assert (p > 0.1) if inside else (p < 0.1) if outside else True
    assert paired_test_from_dict(test.to_dict()) == test


def test_t_test_equals_scipy() -> None:
    diffs = np.random.default_rng(3).normal(-0.05, 0.3, size=40)
    test = PairedMeanTest(float(diffs.mean()), float(diffs.std(ddof=1)), 40)
    reference = stats.ttest_1samp(diffs, 0.0)
    assert test.p_value() == pytest.approx(reference.pvalue, rel=1e-9)
    ci = reference.confidence_interval(0.95)
    assert test.interval(0.95) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_a_bad_saved_test_is_refused() -> None:
    with pytest.raises(ValueError, match="not a saved paired test"):
        paired_test_from_dict({"kind": "bootstrap", "n": 3})


def test_gold_answer_measures_worked_example() -> None:
    # Choices with log-likelihoods [-1, -2, -3]: P(gold 0) = e^-1 / (e^-1 + e^-2 + e^-3) = 0.66524.
    assert gold_logprobs([[-1.0, -2.0, -3.0]], [0]) == pytest.approx([math.log(0.665241)], abs=1e-6)
    assert gold_margins([[-1.0, -2.0, -3.0]], [1]) == [-1.0]  # 1 nat behind the best wrong choice
    assert gold_margins([[-1.0, -2.0, -3.0]], [0]) == [1.0]


# Coverage: simulated data sets, 2,000 each (Monte Carlo standard error 0.005 at 95%). Measured at
# seed 0: paired accuracy 0.952 (n 100, churn 5%), 0.937 (n 100, churn 10%, 3-point drop), 0.951
# (n 200, churn 20%, 5-point drop); perplexity at 30 documents 0.945. Bounds: 0.925-0.975 (5 standard
# errors around 95%), so an interval that misses its level by 2.5 points or more fails.
@pytest.mark.parametrize(("n", "churn", "drop"), [(100, 0.05, 0.0), (100, 0.1, 0.03), (200, 0.2, 0.05)])
def test_paired_accuracy_interval_covers_at_its_level(n: int, churn: float, drop: float) -> None:
    rng = np.random.default_rng(0)
    p_lost, p_gained = (churn + drop) / 2, (churn - drop) / 2
    hits = 0
    for _ in range(2000):
        lost, gained, _ = rng.multinomial(n, [p_lost, p_gained, 1 - p_lost - p_gained])
        low, high = PairedBinaryTest(int(lost), int(gained), n).interval(0.95)
        hits += low <= -drop <= high
    assert 0.925 <= hits / 2000 <= 0.975


def test_perplexity_interval_covers_at_30_documents() -> None:
    """Documents of 20-400 tokens, 1-4 nats per token, the change varying by document around +0.05 nats."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        tokens = rng.integers(20, 400, size=30).astype(float)
        before = tokens * rng.gamma(4, 0.5, size=30)
        after = before + tokens * rng.normal(0.05, 0.1, size=30)
        d = paired_perplexity_delta(before, np.abs(after), tokens)
        hits += d.low / d.before <= math.expm1(0.05) <= d.high / d.before
    assert 0.925 <= hits / 2000 <= 0.975


@pytest.mark.parametrize("n", [1, 7, 30, 200])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.9999])
def test_wilson_interval_equals_scipys(n: int, level: float) -> None:
    for k in range(n + 1):
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
        assert wilson_interval(k, n, level) == pytest.approx((ci.low, ci.high), abs=1e-12)
