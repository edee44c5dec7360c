"""The `stop_early` policy: end training at the last step forecast to stay within budget.

After every check the watch forecasts each budgeted change at the run's last step (guard.forecast).
Once a forecast's interval lies wholly past its limit (its lower end at `level` two-sided, so the
crossing is forecast with (1 + level) / 2 confidence: 95% by default), the run is planned to stop at
the last step that forecast keeps within the limit with that same confidence (`Forecast.within_until`),
or at once when that step has passed. Every later check forecasts again and replaces the plan: a plan
whose forecast no longer crosses is dropped. A check `over` budget stops at once, as `stop` does.

The forecast's confidence is stated with the stop: the share of its bootstrap replicates that are past
the limit at the end, the predicted change with its interval, and the step where the fitted curve
crosses the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forgetless.guard.forecast import Forecast


@dataclass
class StopPlan:
    step: int  # stop once training reaches this step
    made_at: int  # the check whose forecast planned it
    forecast: Forecast

    def why(self) -> str:
        f = self.forecast
        unit = {"points": " points", "percent": "%", "nats": " nats", "kl": " nats (KL)"}.get(f.unit, f" {f.unit}")
        crossing = f"step {f.crossing_step:.0f}" if f.crossing_step is not None else "the end"
        return (
            f"{f.probe}: forecast from {f.checks} checks (to step {f.fitted_to}) to reach {f.change:+.2f}{unit} "
            f"[{f.low:+.2f}, {f.high:+.2f}] by step {f.end_step}, past its limit {f.limit:g}{unit} "
            f"({f.p_cross:.0%} of bootstrap replicates past it; the fitted curve crosses at {crossing}); "
            f"step {self.step} is the last forecast within it at {confidence(f.level):.0%} confidence"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "made_at": self.made_at, "why": self.why(), "forecast": self.forecast.to_dict()}


def confidence(level: float) -> float:
    """The one-sided confidence of a two-sided interval's end."""
    return (1.0 + level) / 2.0


def plan(forecasts: list[Forecast], step: int) -> StopPlan | None:
    """The earliest stop any forecast asks for at the check of `step` (None: every forecast stays within)."""
    plans = []
    for f in forecasts:
        if f.low is None or f.p_cross is None or f.low <= f.limit:
            continue  # the interval does not lie wholly past the limit
        within = f.within_until if f.within_until is not None else f.end_step - 1
        plans.append(StopPlan(max(step, within), step, f))
    return min(plans, key=lambda p: (p.step, -(p.forecast.p_cross or 0.0)), default=None)


def decision(stop: dict[str, Any], step: int) -> dict[str, Any]:
    """The watch's decision when a plan's step (`StopPlan.to_dict()`) is reached: stop here, keep these weights."""
    return {"action": "stop_early", "step": step, "over": [], "why": stop["why"], "plan": stop}
