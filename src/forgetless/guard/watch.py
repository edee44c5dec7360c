"""Watch a fine-tune: score probes during training and hold the run to its forgetting budget.

A TrainerCallback. At watched steps it scores the probes on the weights as they are (rank 0 only;
results go through the content cache, so the stage's final evaluation reuses the last check), compares
them item by item with the baseline, checks the budget and follows the policy: `warn` (record the
breach and go on), `stop` (stop here, keep these weights) or `rollback` (restore the best earlier
weights, then stop). Which weights a rollback restores is `rollback_to`: `within` (default) the check
with the most target gain (else the latest) among those shown within budget, every budgeted check
`within`; `not_over` the same among checks not shown over whose estimated losses all lie inside
their limits, which may restore weights never shown within. The base weights (step 0) are the
fallback either way, and the decision says which check was restored and why. Checks before the
last are sequential (guard.sequential): parts of the items first, all only when needed. After each
check but the last, every budgeted change is forecast at the run's end (guard.forecast): logged and
saved, never acted on.

A run is stopped or rolled back only on an `over` verdict (the interval of a loss wholly past its
limit; see `guard.budget`), never on an inconclusive one. The run's false-alarm rate `false_alarm`
(default 5%: the chance that a run whose probes stay within their limits is stopped or rolled back)
is spent over the checks as guard.procedure says (`check_alpha` gives a check's share; each is split
again over the budgeted probes); the shares sum to at most the rate whatever the cadence.

Each check's point records `status` (guard.budget's verdict of all its checks: within, inconclusive or
over; step 0, the baseline, is within) and is logged through `Trainer.log` (so to `report_to`), with
`watch/budget_status` = 1.0 within, 0.0 inconclusive, -1.0 over. The decision is taken once, on rank 0,
and broadcast, so every rank stops (and restores the same file) at the same step. Every check is saved
in `watch.json` with the best weights, so a resumed run keeps its history. With `every=None` checks
cost about `overhead` (10%) of training time: the interval is the check's cost over 10% of a step's;
the last step is always checked, free when the final evaluation scores the same probes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from forgetless.cache import ResultCache
from forgetless.distributed import broadcast, is_main_process
from forgetless.errors import ForgetlessError
from forgetless.evaluation.audit import compare_evals
from forgetless.evaluation.evaluate import score_probe
from forgetless.evaluation.results import BudgetCheck, budget_status
from forgetless.guard.budget import DEFAULT_ALPHA, Budget, estimates_within, over_budget
from forgetless.guard.forecast_watch import forecast_checks, summary
from forgetless.guard.policies import POLICIES, REMOVED, ROLLBACK_TO
from forgetless.guard.procedure import over_share
from forgetless.guard.resolution import unresolvable
from forgetless.guard.sequential import SequentialCheck, SequentialScorer
from forgetless.models import LoadedModel
from forgetless.paths import write_json_atomic
from forgetless.probes import Probe, ProbeResult, ScoreOptions

log = logging.getLogger(__name__)
# `watch/budget_status`: a check's status as one number a dashboard can plot.
STATUS_VALUES = {"within": 1.0, "inconclusive": 0.0, "noise": 0.0, "over": -1.0}


@dataclass
class WatchSettings:
    probes: list[Probe]
    baseline: dict[str, Any]  # an eval of these probes on the starting weights
    state_dir: Path  # watch.json and the best weights, kept for resume and the report
    budget: Budget = field(default_factory=lambda: Budget([]))
    policy: str = "warn"
    rollback_to: str = "within"  # within: the best check shown within budget; not_over: see the module
    every: int | None = None  # None: the cadence keeps checks near `overhead` of training time
    overhead: float = 0.10
    target: str | None = None  # the probe whose gain picks the rollback point
    max_length: int | None = None
    false_alarm: float = DEFAULT_ALPHA  # the chance a run within budget is stopped or rolled back
    sequential: bool = True  # score a check in parts, stopping once every budgeted probe is within (guard.sequential)
    kl: Any = None  # a guard.kl_signal.KLSignal: its KL from the base joins every check (a `kl:` limit bounds it)


def check_alpha(false_alarm: float, step: int, previous: int, max_steps: int) -> float:
    """The over-share of a check at `step` whose previous check was at `previous` (guard.procedure)."""
    return over_share(false_alarm, step, previous, max_steps)


class Watch(TrainerCallback):
    def __init__(self, settings: WatchSettings, tokenizer: Any, cache: ResultCache | None = None) -> None:
        if settings.policy in REMOVED:
            raise ForgetlessError(*REMOVED[settings.policy])
        if settings.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {settings.policy!r}")
        if settings.rollback_to not in ROLLBACK_TO:
            raise ValueError(f"rollback_to must be one of {ROLLBACK_TO}, got {settings.rollback_to!r}")
        if not 0.0 < settings.false_alarm < 1.0:
            raise ValueError(f"false_alarm must be strictly between 0 and 1, got {settings.false_alarm!r}")
        self.settings, self.tokenizer = settings, tokenizer
        self.cache = cache or ResultCache()
        self.trainer: Any = None
        self.state_path = Path(settings.state_dir) / "watch.json"
        self.best_path = Path(settings.state_dir) / "best.safetensors"
        self.history: dict[str, Any] = _read(self.state_path) or _empty()
        self._clock: float | None = None
        self._parts: SequentialScorer | None = None  # built at the first check that can stop early
        self._last_check = 0
        self._steps_timed = 0

    def attach(self, trainer: Any) -> None:
        """Given the trainer so checks are logged through `Trainer.log` (and so to `report_to`)."""
        self.trainer = trainer

    # -- Trainer events ----------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._last_check = state.global_step
        # watch.json is this stage's history only up to the checkpoint training resumes from: a fresh
        # stage starts over, and checks after the checkpoint will be made again on the same weights.
        if state.global_step == 0:
            self.history = _empty()
        else:
            kept = [p for p in self.history["points"] if p["step"] <= state.global_step]
            events = [e for e in self.history["events"] if e["step"] <= state.global_step]
            self.history |= {"points": kept, "events": events}
        if not self.history["points"] and is_main_process():
            self._record_start(model)
        self.history["max_steps"] = state.max_steps  # the end a forecast predicts
        self._clock = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
        now = time.perf_counter()
        self.history["train_seconds"] += now - (self._clock or now)
        self._steps_timed += 1
        decision = None
        # Rank 0 decides whether to check (its own timing sets the auto cadence), so all ranks agree.
        if broadcast(self._due(state.global_step, state.max_steps) if is_main_process() else None):
            check = (model, state.global_step, state.max_steps)
            decision = broadcast(self._check(*check) if is_main_process() else None)
            self._last_check = state.global_step
        if decision and decision["action"] in ("stop", "rollback"):
            if decision["action"] == "rollback" and decision.get("restore"):
                from safetensors.torch import load_model

                load_model(model, decision["restore"], device=str(next(model.parameters()).device))
            control.should_training_stop = True
            control.should_save = True  # the checkpoint records the stop, so --resume does not train on
            control.should_log = True  # and the loss up to the stop, so a resumed record is whole
            self.history["stopped"] = decision
            if is_main_process():
                write_json_atomic(self.state_path, self.history)
        self._clock = time.perf_counter()
        return control

    # -- checks -----------------------------------------------------------------------------------

    def _due(self, step: int, max_steps: int) -> bool:
        if step >= max_steps:
            return True
        if self.settings.every is not None:
            return step % self.settings.every == 0
        if self._steps_timed < 2:  # the first step includes warm-up: time a second one first
            return False
        step_seconds = self.history["train_seconds"] / self._steps_timed
        interval = math.ceil(self._check_seconds() / (self.settings.overhead * step_seconds))
        return step - self._last_check >= max(1, interval)

    def _check_seconds(self) -> float:
        points = [p for p in self.history["points"] if p["step"] > 0]
        if points:
            return points[-1]["seconds"]
        return sum(p.get("seconds", 0.0) for p in self.settings.baseline["probes"])

    def _score(self, model: Any, label: str) -> Callable[[Probe], ProbeResult]:
        lm = LoadedModel(model, self.tokenizer, label, "training")
        options = ScoreOptions(max_length=self.settings.max_length)
        return lambda probe: score_probe(lm, probe, self.cache, options)[0]

    def _measure(self, model: Any, step: int, alpha: float, last: bool) -> SequentialCheck:
        """Score the watched probes on the weights as they are and judge the budget at `alpha`."""
        settings = self.settings
        was_training = model.training
        model.eval()
        try:
            score = self._score(model, f"step {step}")
            signal = settings.kl if settings.kl is not None and settings.kl.ready else None
            kl = [signal.measure(model, step).comparison()] if signal is not None else []
            if settings.sequential and settings.budget and not last:  # the last check is the run's verdict: whole
                if self._parts is None:
                    self._parts = SequentialScorer(settings.probes, self.tokenizer, settings.baseline)
                return self._parts.check(score, settings.budget, alpha, kl, within=settings.false_alarm)
            current = {"probes": [score(probe).to_dict() for probe in settings.probes]}
        finally:
            model.train(was_training)
        comparisons = compare_evals(settings.probes, settings.baseline, current) + kl
        checks = settings.budget.check(comparisons, alpha, settings.false_alarm) if settings.budget else []
        return SequentialCheck(current, comparisons, checks, 1.0, 1)

    def _record_start(self, model: Any) -> None:
        """Step 0: the baseline, within budget by definition; its weights are the last-resort rollback."""
        point = {
            "step": 0,
            "seconds": 0.0,
            "status": "within" if self.settings.budget else None,
            "target_change": 0.0,
            "checks": [],
            "values": {},
            "alpha": 0,
        }
        point["values"] = _values(self.settings.baseline)
        self.history["points"].append(point)
        # Limits the items cannot resolve, judged at the last check's level (the widest any check gets).
        s = self.settings
        self.history["notes"] = unresolvable(s.budget, s.probes, s.baseline, s.false_alarm)
        for note in self.history["notes"]:
            log.warning(note)
        if self.settings.policy == "rollback":
            self._save_best(model, point)

    def _check(self, model: Any, step: int, max_steps: int) -> dict[str, Any]:
        start = time.perf_counter()
        last = step >= max_steps
        previous = max((p["step"] for p in self.history["points"] if p["step"] < step), default=0)
        alpha = check_alpha(self.settings.false_alarm, step, previous, max_steps)
        measured = self._measure(model, step, alpha, last)
        comparisons, checks = measured.comparisons, measured.checks
        over = over_budget(checks)
        status = budget_status(checks)
        target = next((c for c in comparisons if c.probe == self.settings.target), None)
        point = {
            "step": step,
            "last": last,  # the run's final evaluation reuses this check's scores (same weights, cached)
            "values": _values(measured.current),
            "items_share": measured.share,  # < 1: a sequential check decided on part of the items
            "checks": [c.to_dict() for c in checks],
            "alpha": alpha,  # this check's share of the run's false-alarm rate
            "status": status,  # within | inconclusive | over; None without a budget
            "target_change": None if target is None else target.relative,
        }
        kl = next((c for c in comparisons if c.metric == "kl"), None)
        if kl is not None:  # the KL from the base at this check (guard.kl_signal), and its signal so far
            point["kl"], self.history["kl"] = kl.after, self.settings.kl.report()
        action = self.settings.policy if over else "continue"  # the guard acts only on `over`
        restorable = not over and self.settings.policy == "rollback" and self._restorable(checks, status)
        if restorable and self._better_than_best(point):
            self._save_best(model, point)
        # The forecast is informational: logged and saved, never acted on.
        forecasts = [] if last else forecast_checks([*self.history["points"], point], max_steps)
        point["forecast"] = [summary(f) for f in forecasts]
        if forecasts:
            self.history["forecast"] = {"made_at": step, "forecasts": [f.to_dict() for f in forecasts]}
        point["seconds"] = time.perf_counter() - start
        self.history["watch_seconds"] += point["seconds"]
        self.history["points"].append(point)
        decision: dict[str, Any] = {"action": action, "step": step, "over": [c.to_dict() for c in over]}
        if over:
            best = self.history["best"] if action == "rollback" else None
            decision["restore"] = str(self.best_path) if best else None
            decision["restored_step"] = best["step"] if best else None
            if best:
                decision["restored_why"] = self._restored_why(best)
            decision["why"] = "; ".join(c.describe() for c in over)
            self.history["events"].append(decision)
        write_json_atomic(self.state_path, self.history)
        self._log(point)
        return decision

    def _restorable(self, checks: list[BudgetCheck], status: str | None) -> bool:
        """Whether a check's weights may be rolled back to (`rollback_to`; none over, the caller checked)."""
        if self.settings.rollback_to == "within":
            return status == "within"  # every budgeted check shown within its limit
        return estimates_within(checks)  # not_over: not shown over, every estimated loss inside its limit

    def _restored_why(self, best: dict[str, Any]) -> str:
        """Which checkpoint a rollback restores, and why, in words."""
        rule = self.settings.rollback_to
        if best["step"] == 0:
            restorable = [p for p in self.history["points"] if p["step"] > 0 and self._restorable_point(p)]
            if not restorable:
                none = (
                    "no check was shown within budget"
                    if rule == "within"
                    else "no check was both not over budget and with every estimated loss inside its limit"
                )
            else:
                shown = "shown within budget" if rule == "within" else "not over budget"
                none = f"no check {shown} gained on the target"
            return f"{none}; the base weights (step 0) were restored"
        ranked = "most target gain" if self.settings.target else "the latest"
        if rule == "within":
            return f"restored step {best['step']}: the best check shown within budget ({ranked})"
        status = best.get("status") or "not recorded"
        return (
            f"restored step {best['step']}: the best check not shown over budget with every estimated loss inside "
            f"its limit ({ranked}; rollback_to not_over; its status: {status})"
        )

    def _restorable_point(self, point: dict[str, Any]) -> bool:
        checks = [BudgetCheck(**c) for c in point.get("checks", [])]
        return not over_budget(checks) and self._restorable(checks, budget_status(checks))

    def _better_than_best(self, point: dict[str, Any]) -> bool:
        best = self.history["best"]
        if best is None or point["target_change"] is None or best.get("target_change") is None:
            return True  # no target to rank by: the latest in-budget weights
        return point["target_change"] <= best["target_change"]  # perplexity change: lower is more gain

    def _save_best(self, model: Any, point: dict[str, Any]) -> None:
        from safetensors.torch import save_model

        self.best_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.best_path.with_name(self.best_path.name + ".partial")
        save_model(model, str(partial))
        os.replace(partial, self.best_path)  # never a half-written file to roll back to
        self.history["best"] = {
            "step": point["step"],
            "target_change": point["target_change"],
            "status": point.get("status"),
        }

    def _log(self, point: dict[str, Any]) -> None:
        if self.trainer is None:
            return
        logs = {f"watch/{name}/{metric}": value for name, (metric, value) in point["values"].items()}
        if point["target_change"] is not None:
            logs["watch/target_change"] = point["target_change"]
        if point.get("status") in STATUS_VALUES:  # 1.0 within, 0.0 inconclusive, -1.0 over; none without a budget
            logs["watch/budget_status"] = STATUS_VALUES[point["status"]]
        logs["watch/seconds"] = point["seconds"]
        logs["watch/items_share"] = point.get("items_share", 1.0)
        for f in point.get("forecast", []):  # the change forecast at the run's last step, in the limit's unit
            logs[f"watch/forecast/{f['probe']}" + ("/nats" if f["unit"] == "nats" else "")] = f["change"]
        control = self.trainer.control
        should_log = control.should_log  # Trainer.log clears it, which would drop this step's loss line
        self.trainer.log(logs)
        control.should_log = should_log

    def report(self) -> dict[str, Any]:
        """What the run's results keep: every check, every breach, what was done, and the cost."""
        train = self.history["train_seconds"]
        watch = self.history["watch_seconds"]
        extra = watch - sum(p["seconds"] for p in self.history["points"] if p.get("last"))
        return {
            **self.history,
            "budget": str(self.settings.budget),
            "policy": self.settings.policy,
            "rollback_to": self.settings.rollback_to,
            "false_alarm": self.settings.false_alarm,
            "probes": [p.config.name for p in self.settings.probes],
            **({"kl": self.settings.kl.report()} if self.settings.kl is not None else {}),  # the KL at every log
            # Checks' time over training's (which excludes them); `overhead` leaves out the last step's check,
            # whose scores the final evaluation would compute anyway and takes from the cache.
            "overhead": extra / train if train else None,
            "overhead_with_last": watch / train if train else None,
        }


def _empty() -> dict[str, Any]:
    return {
        "points": [],
        "events": [],
        "best": None,
        "stopped": None,
        "watch_seconds": 0.0,
        "train_seconds": 0.0,
        "notes": [],  # what the budget cannot resolve with these items (guard.resolution)
        "forecast": None,  # the latest forecast of every budgeted change at the run's end (guard.forecast_watch)
    }


def _values(evaluation: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """Each probe's primary metric and value, for the dynamics over steps."""
    return {
        p["name"]: (p["primary"], p["metrics"][p["primary"]]["value"])
        for p in evaluation["probes"]
        if p["primary"] in p["metrics"]
    }


def _read(path: Path) -> dict[str, Any] | None:
    import json

    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
