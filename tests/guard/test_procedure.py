"""The guard's spending of its false-alarm rate over the checks of a run (guard.procedure)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from forgetless.guard.procedure import (
    EARLY_SHARE,
    Levels,
    describe,
    last_over_share,
    obrien_fleming_spent,
    over_share,
    spent,
)


def test_obrien_fleming_spending_worked_example() -> None:
    # Lan & DeMets (1983): alpha(t) = 2 - 2 Phi(z_{1 - a/2} / sqrt(t)); at a = 0.05, t = 0.5: 2 - 2 Phi(2.7718).
    assert obrien_fleming_spent(0.05, 0.5) == pytest.approx(2 * stats.norm.sf(1.959964 / math.sqrt(0.5)), rel=1e-6)
    assert obrien_fleming_spent(0.05, 0.5) == pytest.approx(0.005575, abs=1e-6)
    assert obrien_fleming_spent(0.05, 0.0) == 0.0 and obrien_fleming_spent(0.05, 1.0) == 0.05


@pytest.mark.parametrize("steps", [[100], [50, 100], [10, 20, 30, 99, 100], list(range(1, 101)), [7, 60, 61, 100]])
def test_the_shares_of_any_cadence_sum_to_at_most_the_rate_and_the_last_keeps_80_percent(steps: list[int]) -> None:
    shares, previous = [], 0
    for step in steps:
        shares.append(over_share(0.05, step, previous, 100))
        previous = step
    assert sum(shares) <= 0.05 + 1e-12
    assert shares[-1] == pytest.approx(last_over_share(0.05)) == pytest.approx((1 - EARLY_SHARE) * 0.05)
    assert all(s >= 0 for s in shares)
    assert sum(shares[:-1]) <= EARLY_SHARE * 0.05 + 1e-12


def test_early_checks_spend_little() -> None:
    """O'Brien-Fleming shape: a check at a tenth of the run may stop only a breach beyond 6 standard errors."""
    assert spent(0.05, 0.1) < 1e-9
    assert spent(0.05, 0.5) == pytest.approx(EARLY_SHARE * 0.005575, rel=1e-3)
    assert over_share(0.05, 150, 100, 100) == pytest.approx(last_over_share(0.05))  # past the end: the last look


def test_levels_are_checked_and_the_legend_comes_from_the_constants() -> None:
    with pytest.raises(ValueError, match="over level must be strictly between 0 and 1"):
        Levels(0.0, 0.05)
    text = describe(0.05)
    assert "O'Brien-Fleming" in text and f"{EARLY_SHARE:.0%}" in text and "intersection-union" in text
    assert "never counted as within" in text
