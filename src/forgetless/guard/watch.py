"""Watch a fine-tune: score probes during training and hold the run to its forgetting budget.

A TrainerCallback. At watched steps it scores the probes on the weights as they are (rank 0 only;
results go through the content cache, so the stage's final evaluation reuses the last check), compares
them item by item with the baseline, checks the budget and follows the policy: `warn` (record the
breach and go on), `stop` (stop here, keep these weights) or `rollback` (restore the best weights
within budget: most target gain, else the latest, else the starting weights; then stop) or
`stop_early` (stop at the last step the forecast keeps within budget, see guard.early_stop). Checks
before the last are sequential (guard.sequential): parts of the items first, all only when needed.
After each check but the last, every budgeted change is forecast at the run's end (guard.forecast).

A run is stopped or rolled back only on an `over` verdict (the interval of a loss wholly past its
limit; see `guard.budget`), never on an inconclusive one. The run's false-alarm rate `false_alarm`
(default 5%: the chance that a run whose probes stay within their limits is stopped or rolled back)
is spent over the checks: half on the last step's check, which is the run's verdict, and half over
the checks before it in proportion to the steps each covers (linear alpha spending, Lan & DeMets
1983, Biometrika 70:659-663). The shares sum to at most the rate whatever the cadence (`every:
auto` included) and however the checks depend on each other (they reuse the same items), by the
union bound. `check_alpha` gives a check's share; each is split again over the budgeted probes.

The decision is taken once, on rank 0, and broadcast, so every rank stops (and restores the same
file) at the same step. Every check is logged through `Trainer.log` (so to `report_to`) and saved in
`watch.json` with the best weights, so a resumed run keeps its history. With `every=None` checks
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
from forgetless.evaluation.audit import compare_evals
from forgetless.evaluation.evaluate import score_probe
from forgetless.guard import early_stop
from forgetless.guard.budget import DEFAULT_ALPHA, Budget, estimates_within, over_budget
from forgetless.guard.forecast_watch import forecast_checks, summary
from forgetless.guard.resolution import unresolvable
from forgetless.guard.sequential import SequentialCheck, SequentialScorer
from forgetless.models import LoadedModel
from forgetless.paths import write_json_atomic
from forgetless.probes import Probe, ProbeResult, ScoreOptions

POLICIES = ("warn", "stop", "rollback", "stop_early")
log = logging.getLogger(__name__)


@dataclass
class WatchSettings:
    probes: list[Probe]
    baseline: dict[str, Any]  # an eval of these probes on the starting weights
    state_dir: Path  # watch.json and the best weights, kept for resume and the report
    budget: Budget = field(default_factory=lambda: Budget([]))
    policy: str = "warn"
    every: int | None = None  # None: the cadence keeps checks near `overhead` of training time
    overhead: float = 0.10
    target: str | None = None  # the probe whose gain picks the rollback point
    max_length: int | None = None
    false_alarm: float = DEFAULT_ALPHA  # the chance a run within budget is stopped or rolled back
    sequential: bool = True  # score a check in parts, stopping once every budgeted probe is within (guard.sequential)
    kl: Any = None  # a guard.kl_signal.KLSignal: its KL from the base joins every check (a `kl:` limit bounds it)


def check_alpha(false_alarm: float, step: int, previous: int, max_steps: int) -> float:
    """The false-alarm share of a check at `step` whose previous check was at `previous`.

    The last step's check gets half the rate; the checks before it share the other half in
    proportion to the steps since the previous check (linear spending over the run's steps).
    """
    if step >= max_steps:
        return false_alarm / 2.0
    return false_alarm / 2.0 * max(0, step - previous) / max(1, max_steps)


class Watch(TrainerCallback):
    def __init__(self, settings: WatchSettings, tokenizer: Any, cache: ResultCache | None = None) -> None:
        if settings.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {settings.policy!r}")
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
        self._plan: dict[str, Any] | None = None  # stop_early: the stop the latest forecast planned

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
            self._plan = decision.get("plan")
        due = self._plan is not None and state.global_step >= self._plan["step"]
        if due and not (decision and decision["action"] in ("stop", "rollback")):
            decision = early_stop.decision(self._plan, state.global_step)
            self.history["events"].append(decision)
        if decision and decision["action"] in ("stop", "rollback", "stop_early"):
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
                return self._parts.check(score, settings.budget, alpha, kl)
            current = {"probes": [score(probe).to_dict() for probe in settings.probes]}
        finally:
            model.train(was_training)
        comparisons = compare_evals(settings.probes, settings.baseline, current) + kl
        checks = settings.budget.check(comparisons, alpha) if settings.budget else []
        return SequentialCheck(current, comparisons, checks, 1.0, 1)

    def _record_start(self, model: Any) -> None:
        """Step 0: the baseline, within budget by definition; its weights are the last-resort rollback."""
        point = {
            "step": 0,
            "seconds": 0.0,
            "within": True,
            "target_change": 0.0,
            "checks": [],
            "values": {},
            "alpha": 0,
        }
        point["values"] = _values(self.settings.baseline)
        self.history["points"].append(point)
        # Limits the items cannot resolve, judged at the last check's level (the widest any check gets).
        s = self.settings
        self.history["notes"] = unresolvable(s.budget, s.probes, s.baseline, s.false_alarm / 2)
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
        target = next((c for c in comparisons if c.probe == self.settings.target), None)
        point = {
            "step": step,
            "last": last,  # the run's final evaluation reuses this check's scores (same weights, cached)
            "values": _values(measured.current),
            "items_share": measured.share,  # < 1: a sequential check decided on part of the items
            "checks": [c.to_dict() for c in checks],
            "alpha": alpha,  # this check's share of the run's false-alarm rate
            "within": not over,  # no check over: the guard acts only on `over`
            "target_change": None if target is None else target.relative,
        }
        kl = next((c for c in comparisons if c.metric == "kl"), None)
        if kl is not None:  # the KL from the base at this check (guard.kl_signal), and its signal so far
            point["kl"], self.history["kl"] = kl.after, self.settings.kl.report()
        action = "continue"
        if over:
            action = {"warn": "warn", "stop_early": "stop"}.get(self.settings.policy, self.settings.policy)
        elif self.settings.policy == "rollback" and estimates_within(checks) and self._better_than_best(point):
            # A rollback point must be better than "not proven over": every estimated loss inside its limit.
            self._save_best(model, point)
        forecasts = [] if last else forecast_checks([*self.history["points"], point], max_steps)
        point["forecast"] = [summary(f) for f in forecasts]
        if forecasts:
            self.history["forecast"] = {"made_at": step, "forecasts": [f.to_dict() for f in forecasts]}
        planned = early_stop.plan(forecasts, step) if self.settings.policy == "stop_early" and not over else None
        point["seconds"] = time.perf_counter() - start
        self.history["watch_seconds"] += point["seconds"]
        self.history["points"].append(point)
        decision = {"action": action, "step": step, "over": [c.to_dict() for c in over]}
        decision["plan"] = planned.to_dict() if planned else None
        if over:
            best = self.history["best"]
            decision["restore"] = str(self.best_path) if action == "rollback" and best else None
            decision["restored_step"] = best["step"] if action == "rollback" and best else None
            decision["why"] = "; ".join(c.describe() for c in over)
            self.history["events"].append(decision)
        write_json_atomic(self.state_path, self.history)
        self._log(point)
        return decision

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
        self.history["best"] = {"step": point["step"], "target_change": point["target_change"]}

    def _log(self, point: dict[str, Any]) -> None:
        if self.trainer is None:
            return
        logs = {f"watch/{name}/{metric}": value for name, (metric, value) in point["values"].items()}
        if point["target_change"] is not None:
            logs["watch/target_change"] = point["target_change"]
        logs["watch/within_budget"] = float(point["within"])
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
