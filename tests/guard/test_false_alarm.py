"""The guard's run-level false-alarm rate, its power and its clean bills, by simulation through its own
decision functions (guard.simulation: items drift cumulatively from one base, so checks are correlated
as in a real run; 10 checks per run, the procedure of guard.procedure).

A rate may exceed the stated 5% only by its Monte Carlo error (two standard errors at 5%). Measured at
these seeds (bench/guard_power.py has the full grid, 2,000 runs a row): every probe at its limit from the
first check 0-2% of runs stopped; a 15-point breach on one probe of 6 x 200 items caught in 93%; a run
that only churns ends within a pooled 2-point limit over 1,200 items in 72% (a floor of 60% below).
"""

from __future__ import annotations

import math

import pytest

from forgetless.guard.simulation import Scenario, SimProbe, rates


def bound(runs: int) -> float:
    return 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)


@pytest.mark.parametrize(
    ("scenario", "runs"),
    [
        (Scenario([SimProbe(n=200, drop=2.0)] * 6), 400),  # every probe's loss reaches its limit by the end
        (Scenario([SimProbe(n=100, drop=5.0)] * 6, "5pt", immediate=True), 400),  # at the limit from the start
        (Scenario([SimProbe(n=200, drop=2.0)] * 6, "pooled:2pt", immediate=True), 400),
        (Scenario([SimProbe(n=200, churn=0.2)] * 6), 400),  # answers change, expected accuracy does not
        # Left-skewed per-document changes, where Student's t at small levels is liberal: bootstrap-t holds.
        (Scenario([SimProbe("perplexity", n=30, drop=5.0, sd=0.15)] * 2, "5%", checks=4, immediate=True), 150),
    ],
    ids=["at-the-limit", "at-the-limit-at-once", "pooled-at-the-limit", "churn-only", "perplexity-skewed"],
)
def test_runs_within_budget_are_stopped_at_most_at_the_stated_rate(scenario: Scenario, runs: int) -> None:
    assert rates(scenario, runs, seed=1).over <= bound(runs)


def test_a_real_breach_is_caught() -> None:
    """A rule that never says over would pass the tests above; this one must catch a 15-point drop."""
    scenario = Scenario([SimProbe(n=200, drop=15.0)] + [SimProbe(n=200)] * 5)
    assert rates(scenario, 400, seed=1).over >= 0.8


def test_a_run_that_only_churns_ends_within_a_pooled_limit() -> None:
    """A rule that never says within would pass every test above; `pooled:2pt` over 1,200 items must clear
    a run whose expected accuracy did not move (measured 72%), and never clear a 5-point pooled loss."""
    clean = rates(Scenario([SimProbe(n=200)] * 6, "pooled:2pt"), 400, seed=1)
    assert clean.within >= 0.6 and clean.over == 0
    broken = rates(Scenario([SimProbe(n=200, drop=5.0)] * 6, "pooled:2pt"), 200, seed=1)
    assert broken.within == 0 and broken.over >= 0.8
