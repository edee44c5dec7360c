"""The stop_early policy on scripted checks (no training): it stops at the step its forecast plans."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from forgetless.evaluation.results import BudgetCheck
from forgetless.guard import early_stop
from forgetless.guard.budget import Budget
from forgetless.guard.forecast import Forecast
from forgetless.guard.sequential import SequentialCheck
from forgetless.guard.watch import Watch, WatchSettings

LIMIT, END, EVERY, HALF = 5.0, 400, 20, 0.5  # a 5% limit; checks every 20 steps; intervals +-0.5 points


def curve(step: int) -> float:
    return 0.3 * ((step + 10) ** 0.7 - 10**0.7)  # crosses 5% at step 71


class Scripted(Watch):
    """A Watch whose checks return a scripted change instead of scoring probes."""

    def __init__(self, tmp_path: Path, policy: str, changes) -> None:  # noqa: ANN001
        settings = WatchSettings([], {"probes": []}, tmp_path, Budget.parse(f"{LIMIT:g}%"), policy, every=EVERY)
        super().__init__(settings, tokenizer=None)
        self.changes = changes

    def _measure(self, model, step, alpha, last):  # noqa: ANN001, ANN202
        change, half = self.changes(step), HALF
        if isinstance(change, tuple):
            change, half = change
        status = "over" if change - half > LIMIT else "within" if change + half < LIMIT else "inconclusive"
        check = BudgetCheck(
            "lambada", "perplexity", change, LIMIT, "percent", status, change - half, change + half, 0.99
        )
        return SequentialCheck({"probes": []}, [], [check], 1.0, 1)


def train(watch: Watch) -> int:
    """Step through training as Trainer would; the step at which the watch stopped it (END: never)."""
    state = SimpleNamespace(global_step=0, max_steps=END)
    control = SimpleNamespace(should_training_stop=False, should_save=False, should_log=False)
    watch.on_train_begin(None, state, control, model=None)
    for step in range(1, END + 1):
        state.global_step = step
        watch.on_step_end(None, state, control, model=None)
        if control.should_training_stop:
            return step
    return END


def test_stops_at_the_last_step_forecast_within_budget(tmp_path) -> None:  # noqa: ANN001
    watch = Scripted(tmp_path, "stop_early", curve)
    stopped = train(watch)
    decision = watch.history["stopped"]
    assert decision["action"] == "stop_early" and decision["step"] == stopped
    plan = decision["plan"]
    # The plan in force is the latest check's; it was made before the stop, at a check.
    checks = [p["step"] for p in watch.history["points"] if p["step"] > 0]
    assert plan["made_at"] == checks[-1] and plan["made_at"] <= stopped
    assert stopped == max(plan["made_at"], plan["forecast"]["within_until"])
    # It stops before the scripted curve reaches the limit, and no check was ever over.
    true_crossing = next(s for s in range(END) if curve(s) > LIMIT)
    assert plan["made_at"] < stopped < true_crossing
    assert all(c["status"] != "over" for p in watch.history["points"] for c in p["checks"])
    assert "past its limit 5%" in decision["why"] and "confidence" in decision["why"]
    assert watch.history["forecast"]["forecasts"][0]["probe"] == "lambada"


def test_stop_policy_trains_on_to_the_breach(tmp_path) -> None:  # noqa: ANN001
    watch = Scripted(tmp_path, "stop", curve)
    stopped = train(watch)
    assert watch.history["stopped"]["action"] == "stop"
    assert stopped > next(s for s in range(END) if curve(s) - HALF > LIMIT)  # only once a check is over


def test_stops_now_when_the_planned_step_has_passed(tmp_path) -> None:  # noqa: ANN001
    # Checks too noisy to forecast from (+-4 points) up to step 60, then a sharp one at step 80, close to
    # the limit: the first forecast sure of a crossing puts it behind that check.
    def noisy(step: int) -> tuple[float, float]:
        return 0.06 * step, 4.0 if step <= 60 else 0.3

    watch = Scripted(tmp_path, "stop_early", noisy)
    stopped = train(watch)
    plan = watch.history["stopped"]["plan"]
    assert stopped == plan["made_at"] and stopped % EVERY == 0  # at that check, not later
    assert plan["forecast"]["within_until"] is None or plan["forecast"]["within_until"] <= stopped


def test_no_stop_when_the_forecast_stays_within(tmp_path) -> None:  # noqa: ANN001
    watch = Scripted(tmp_path, "stop_early", lambda step: 0.5 * np.log1p(step / 100))  # 0.8% by the end
    assert train(watch) == END and watch.history["stopped"] is None
    forecasts = [f for p in watch.history["points"] for f in p.get("forecast", [])]
    assert len(forecasts) == END // EVERY - 2  # every check but the first (one check: no curve) and the last
    assert all(f["low"] <= LIMIT for f in forecasts) and forecasts[-1]["p_cross"] == 0.0


def forecast(low: float, within: int | None, p: float = 0.99, probe: str = "a") -> Forecast:
    return Forecast(probe, "percent", 5.0, "power", 4, 80, 400, low + 1, low, low + 2, 0.9, 150.0, within, p)


def test_plan_takes_the_earliest_stop_of_the_forecasts_past_their_limit() -> None:
    assert early_stop.plan([forecast(4.0, 120)], 80) is None  # the interval reaches inside the limit
    plan = early_stop.plan([forecast(6.0, 200, probe="a"), forecast(5.5, 140, probe="b")], 80)
    assert plan.step == 140 and plan.forecast.probe == "b" and plan.made_at == 80
    assert early_stop.plan([forecast(6.0, 60)], 80).step == 80  # passed already: now
    assert early_stop.plan([forecast(6.0, None)], 80).step == 399  # the curve itself stays within: the last step
    assert early_stop.confidence(0.9) == pytest.approx(0.95)
