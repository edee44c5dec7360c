"""Simulate the guard on synthetic runs: how often it stops a run that forgot nothing, and how often
it catches one that did, for a budget, a number of probes, items and checks.

Each simulated run has `probes` accuracy probes of `n` items whose base answers are right with
probability `base`. At each of `checks` evenly spaced checks, a share `churn` of the items flips,
half right -> wrong and half wrong -> right, so expected accuracy does not move; a probe listed in
`drops` loses that many more points (extra right -> wrong flips). Flips are either `fresh` at every
check (each check draws its own) or `building` (the flipped set grows to `churn` by the last
check, nested, as drift accumulates). Every check goes through the guard's own decision: each
probe's paired comparison (`paired_accuracy_delta`), `Budget.check` at the check's share of the
false-alarm rate (`guard.watch.check_alpha`). A run is stopped at its first `over`.

`bench/verdicts.py` runs the grids and writes bench/RESULTS.md; tests/guard/test_false_alarm.py
holds the rate to its bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from forgetless.guard.budget import Budget
from forgetless.guard.watch import check_alpha
from forgetless.metrics import paired_accuracy_delta
from forgetless.probes.base import Comparison, ProbeResult


@dataclass
class Scenario:
    n: int = 200
    probes: int = 6
    checks: int = 10
    limit: float = 2.0  # points
    churn: float = 0.1
    drops: dict[int, float] = field(default_factory=dict)  # {probe index: true drop in points at the end}
    mode: str = "fresh"  # fresh | building
    base: float = 0.6
    false_alarm: float = 0.05


def _after(before: np.ndarray, u: np.ndarray, churn: float, drop: float) -> np.ndarray:
    """Flip right items with prob (churn/2 + drop) / base-rate, wrong ones with churn/2 / (1 - base-rate)."""
    right = before.astype(bool)
    share_right = max(right.mean(), 1e-9)
    share_wrong = max(1.0 - right.mean(), 1e-9)
    p_right = min(1.0, (churn / 2 + drop) / share_right)
    p_wrong = min(1.0, (churn / 2) / share_wrong)
    flip = np.where(right, u < p_right, u < p_wrong)
    return np.where(flip, 1 - before, before)


def _comparison(index: int, before: np.ndarray, after: np.ndarray) -> Comparison:
    result = ProbeResult(f"p{index}", "choice", "general", "acc", {}, int(before.size), 0.0)
    return Comparison.paired(result, "acc", True, paired_accuracy_delta(before, after))


# A decision rule: (per-probe before answers, after answers, the check's false-alarm share, limit
# in points) -> whether the run stops here. The guard's own is `guard_decision`; a benchmark can
# pass another (bench/verdicts.py passes the rule forgetless used before 0.4) to compare them.
Decision = Callable[[list[np.ndarray], list[np.ndarray], float, float], bool]


def guard_decision(before: list[np.ndarray], after: list[np.ndarray], alpha: float, limit: float) -> bool:
    comparisons = [_comparison(i, b, a) for i, (b, a) in enumerate(zip(before, after, strict=True))]
    return any(c.status == "over" for c in Budget.parse(f"{limit:g}pt").check(comparisons, alpha))


def simulate_run(rng: np.random.Generator, s: Scenario, decide: Decision = guard_decision) -> int | None:
    """The check (1-based) at which the guard stops this run, or None if it runs to the end."""
    steps = [round((j + 1) * 100 / s.checks) for j in range(s.checks)]
    before = [(rng.random(s.n) < s.base).astype(int) for _ in range(s.probes)]
    fixed_u = [rng.random(s.n) for _ in range(s.probes)]
    previous = 0
    for j, step in enumerate(steps, start=1):
        grown = j / s.checks  # churn and drops build up to their end values
        after = []
        for i in range(s.probes):
            u = fixed_u[i] if s.mode == "building" else rng.random(s.n)
            churn = s.churn * (grown if s.mode == "building" else 1.0)
            drop = s.drops.get(i, 0.0) / 100 * grown
            after.append(_after(before[i], u, churn, drop))
        alpha = check_alpha(s.false_alarm, step, previous, 100)
        previous = step
        if decide(before, after, alpha, s.limit):
            return j
    return None


def stop_rate(s: Scenario, runs: int, seed: int = 0, decide: Decision = guard_decision) -> tuple[float, float]:
    """The share of `runs` simulated runs the guard stops, and its Monte Carlo standard error."""
    rng = np.random.default_rng(seed)
    stopped = sum(simulate_run(rng, s, decide) is not None for _ in range(runs))
    rate = stopped / runs
    return rate, math.sqrt(max(rate * (1 - rate), 1.0 / runs) / runs)
