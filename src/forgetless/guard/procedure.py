"""The guard's decision procedure: how a run's false-alarm rate is spent over its checks and probes.

A run is judged at several checks (looks) of the same items, each a paired comparison with the one
baseline, so the looks are strongly correlated. Two questions are asked at every look, with two
different error rates:

- **over** ("this probe lost more than its limit"): a false alarm stops or rolls back a run that was
  within budget, so the chance of any `over` at any look, on any probe, while every true loss is
  within its limit, is held at the run's rate `false_alarm` (5% by default). The rate is spent over
  the looks by an O'Brien-Fleming-type Lan-DeMets spending function of the information fraction
  t = step / max_steps (Lan & DeMets 1983, Biometrika 70:659-663), alpha(t) = 2 - 2 Phi(z_{1-a/2} /
  sqrt(t)), capped so that the checks before the last spend at most `EARLY_SHARE` of the rate: the
  last look, which is the run's verdict, keeps at least 80% of it. Early looks then stop only a
  clear breach. Each look's share is split equally over its budgeted checks (Bonferroni). The union
  bound holds whatever the correlation between looks and probes.
- **within** ("this probe lost less than its limit"): the run is within budget only when every
  budgeted check is within, an intersection-union test (Berger 1982, Technometrics 24:295-300): it
  needs no split over probes, so each check is tested at the full rate. Only the last look's within
  is the run's verdict; a check before it uses `within` to pick a rollback point, at the same level.

A check that is neither is `inconclusive`, and never reads as within anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

EARLY_SHARE = 0.2  # the share of the over-rate the checks before the last may spend


def obrien_fleming_spent(alpha: float, t: float) -> float:
    """Lan-DeMets O'Brien-Fleming-type spending: the rate spent by information fraction t in [0, 1]."""
    if t <= 0.0:
        return 0.0
    if t >= 1.0:
        return alpha
    z = float(special.ndtri(1.0 - alpha / 2.0))
    return float(2.0 * special.ndtr(-z / math.sqrt(t)))


def spent(false_alarm: float, t: float, early_share: float = EARLY_SHARE) -> float:
    """The over-rate spent by the looks up to information fraction t (all of it at t >= 1)."""
    if t >= 1.0:
        return false_alarm
    return early_share * obrien_fleming_spent(false_alarm, t)


def over_share(false_alarm: float, step: int, previous: int, max_steps: int) -> float:
    """A look's share of the over-rate: what the spending function spends between the previous look
    (at step `previous`, 0 for none) and this one; the last look (step >= max_steps) gets `last_over_share`.
    The shares of a run's looks sum to at most the rate."""
    max_steps = max(1, max_steps)
    if step >= max_steps:  # the run's verdict: exactly what the checks before it may not spend
        return last_over_share(false_alarm)
    return max(0.0, spent(false_alarm, step / max_steps) - spent(false_alarm, previous / max_steps))


def last_over_share(false_alarm: float) -> float:
    """The least share of the over-rate the last look keeps, whatever the checks before it spent."""
    return (1.0 - EARLY_SHARE) * false_alarm


@dataclass(frozen=True)
class Levels:
    """The levels of one look: `over` is split over its budgeted checks, `within` is not (see module)."""

    over: float  # the look's share of the over-rate (all checks together)
    within: float  # each check's level for within

    def __post_init__(self) -> None:
        for name in ("over", "within"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} level must be strictly between 0 and 1, got {value!r}")


def describe(false_alarm: float) -> str:
    """The procedure in one sentence, for report legends and results (generated from the constants above)."""
    return (
        f"over: at most {false_alarm:.0%} false alarms per run, spent over the checks by an O'Brien-Fleming-type "
        f"Lan-DeMets function of step / max_steps (checks before the last spend at most {EARLY_SHARE:.0%} of it), "
        f"each check's share split equally over its budgeted limits (Bonferroni); within: every limit at "
        f"{false_alarm:.0%}, all required (intersection-union); inconclusive otherwise, never counted as within"
    )
