"""`forgetless calibrate-kl`: the (KL, probe change) pairs of finished runs, fitted across them (guard.kl_calibration).

From each run folder's results.json (docs/schema.md, `forgetless.run/1`):
- the run's end: the KL at the step whose weights were evaluated last (the restored step after a rollback,
  else the latest measured), against each general probe's change in the final audit; the change in the
  probe's budget unit, as a budget judges it (guard.verdict): accuracy points, perplexity percent, and the
  gold answer's log-probability in nats for multiple-choice probes;
- the watch's checks during training (`within_run`): each check's KL against the change of every watched probe
  from its value at step 0, and its nats checks when the budget bounded them.

Only a run's first stage is read: a later stage's KL is measured from that stage's start, not from the base
the probes' changes are measured from. A run with several stages gives its first stage's last check as its end.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.guard.budget import ACCURACY_METRICS, LOGPROB_METRICS, PERPLEXITY_METRICS, Budget
from forgetless.guard.kl_calibration import DEFAULT_LEVEL, KLCalibration, KLPoint, calibrate, kl_budgets
from forgetless.paths import write_json_atomic

NO_KL_FIX = (
    "set guard.kl: true in the runs' config (the KL is measured on each stage's held-out inputs, data.held_out) "
    "and run them again"
)


def _unit(metric: str) -> str | None:
    if metric in ACCURACY_METRICS:
        return "points"
    return "percent" if metric in PERPLEXITY_METRICS else None


def _change(unit: str, before: float, after: float) -> float:
    """The loss in the unit, positive = worse: points 100 x the accuracy's fall, percent 100 x the relative rise."""
    return 100.0 * (before - after) if unit == "points" else 100.0 * (after / before - 1.0)


def _read(folder: Path) -> dict[str, Any]:
    path = folder if folder.is_file() else folder / "results.json"
    if not path.is_file():
        raise ForgetlessError(
            f"no results.json in '{folder}': not a finished forgetless run", "give the output_dir of `forgetless run`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ForgetlessError(f"cannot read {path}: {error}", "give the results.json a run wrote") from error
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("forgetless.run/"):
        raise ForgetlessError(f"{path} is not a run's results (schema forgetless.run/1)", "give a forgetless run's")
    return data


def _kl_at(watch: dict[str, Any]) -> dict[int, float]:
    """{step: KL} from the watch's checks and the signal's history (every logging step)."""
    found = {int(row[0]): float(row[1]) for row in (watch.get("kl") or {}).get("history") or []}
    found |= {int(p["step"]): float(p["kl"]) for p in watch.get("points", []) if p.get("kl") is not None}
    return found


def _end_step(watch: dict[str, Any], kl: dict[int, float]) -> int:
    stopped = watch.get("stopped") or {}
    events = [e for e in watch.get("events", []) if e.get("restored_step") is not None]
    if stopped.get("action") == "rollback" and events:
        return int(events[-1]["restored_step"])  # the weights the stage ended with
    return max(kl)


def _watch_points(label: str, watch: dict[str, Any], kl: dict[int, float], skip: set[str]) -> list[KLPoint]:
    """Every check with a KL: each watched probe's change from step 0, and the budget's nats checks."""
    points = watch.get("points", [])
    start = next((p.get("values") or {} for p in points if p["step"] == 0), {})
    out = []
    for point in points:
        step = int(point["step"])
        if step == 0 or step not in kl:
            continue
        for probe, (metric, value) in (point.get("values") or {}).items():
            unit = _unit(metric)
            if unit is None or probe in skip or probe not in start or start[probe][0] != metric:
                continue
            out.append(KLPoint(label, probe, unit, kl[step], _change(unit, start[probe][1], value), step, True))
        for check in point.get("checks", []):
            if check.get("unit") == "nats" and check["probe"] not in skip:
                out.append(KLPoint(label, check["probe"], "nats", kl[step], float(check["change"]), step, True))
    return out


def _final_points(label: str, data: dict[str, Any], kl: float, step: int) -> list[KLPoint]:
    """Each general probe of the final audit: its primary metric's change, and the gold answer's in nats."""
    primary = {p["name"]: p["primary"] for p in data["baseline"]["probes"]}
    out = []
    for c in data["final"]["comparisons"]:
        if c["role"] != "general":
            continue
        if c["metric"] == primary.get(c["probe"]) and _unit(c["metric"]) is not None:
            unit = _unit(c["metric"])
            relative = c.get("relative") if unit == "percent" else None
            change = 100.0 * relative if relative is not None else _change(unit, c["before"], c["after"])
            out.append(KLPoint(label, c["probe"], unit, kl, change, step, False))
        elif c["metric"] in LOGPROB_METRICS:  # a fall of the gold answer's log-probability is a loss
            out.append(KLPoint(label, c["probe"], "nats", kl, float(c["before"] - c["after"]), step, False))
    return out


def run_points(label: str, data: dict[str, Any]) -> tuple[list[KLPoint], list[str]]:
    """A run's (KL, change) points from its results, and notes on what was left out. None: it logged no KL."""
    stages = data.get("stages") or []
    watch = ((stages[0].get("training") or {}).get("watch") or {}) if stages else {}
    kl = _kl_at(watch)
    if not kl:
        return [], []
    targets = {c["probe"] for c in data["final"]["comparisons"] if c["role"] != "general"}
    targets |= {f"stage_{s['name']}" for s in data["config"].get("stages", [])}
    end = _end_step(watch, kl)
    within = _watch_points(label, watch, kl, targets)
    notes = []
    if len(stages) == 1:
        if end not in kl:
            notes.append(f"{label}: no KL at step {end}, where its weights ended: its end left out")
            return within, notes
        checks = [p for p in within if p.step != end]  # the check at the end scored the weights the audit did
        return [*_final_points(label, data, kl[end], end), *checks], notes
    notes.append(f"{label}: {len(stages)} stages; only the first is fitted (a later stage's KL is from its own start)")
    return [p if p.step != end else replace(p, within_run=False) for p in within], notes


def _labels(folders: list[Path]) -> list[str]:
    resolved = [f.resolve() for f in folders]
    twice = sorted({str(f) for f in folders if resolved.count(f.resolve()) > 1})
    if twice:
        raise ForgetlessError(f"run {', '.join(twice)} given twice", "give each run folder once")
    names = [f.name if f.is_dir() else f.parent.name for f in folders]
    return names if len(set(names)) == len(names) else [str(f) for f in folders]


def calibrate_runs(
    folders: list[Path],
    budget: str | None = None,
    level: float = DEFAULT_LEVEL,
    within_run: bool = True,
    out: Path | None = None,
) -> KLCalibration:
    """Fit each probe's change against the KL across `folders` (finished runs) and invert `budget`'s limits."""
    limits = Budget.parse(budget)  # a typo fails before any run is read
    points, notes, without, bases = [], [], [], set[str | None]()
    for label, folder in zip(_labels(folders), folders, strict=True):
        data = _read(folder)
        found, said = run_points(label, data)
        points += found
        notes += said
        if not found:
            without.append(label)
        bases.add(((data.get("baseline") or {}).get("model") or {}).get("fingerprint"))
    if without:
        raise ForgetlessError(f"no KL logged in run(s) {', '.join(without)}: guard.kl was off", NO_KL_FIX)
    calibration = calibrate(points, level, within_run)
    bases.discard(None)
    if len(bases) > 1:
        notes.append(f"the runs start from {len(bases)} different base models: their KLs may not be comparable")
    calibration.notes = notes + calibration.notes
    if limits:
        calibration.budgets = kl_budgets(calibration, limits)
    if out is not None:
        write_json_atomic(out, calibration.to_dict())
    return calibration
