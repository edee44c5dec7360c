"""`forgetless run --auto`: choose a method's strength by successive halving on short runs.

The first method of the run that has a strength (L2-SP alpha, EWC lambda, replay ratio, LoRA rank)
is tried at each candidate value on a short run (a quarter of the steps); the better half go on to a
run twice as long, and so on until one candidate trains for the full steps (Jamieson & Talwalkar,
"Non-stochastic Best Arm Identification and Hyperparameter Optimization", AISTATS 2016). "Better"
means: shown within the forgetting budget first, then inconclusive, then over (each trial's `status`,
guard.budget), and among equals the most target gain (the stage's held-out perplexity falling the
most). Every trial is a whole `run` in its own folder under `auto/`, and auto.json lists them all.
The last rung's run is the result.

A stronger regularizer keeps more and gains less, so the winner is usually the weakest setting that
still meets the budget; short runs forget less than long ones, which is why candidates that pass
early are re-checked on longer runs rather than trusted.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from forgetless.config.run import RunConfig, build_methods
from forgetless.errors import ForgetlessError
from forgetless.paths import write_json_atomic, write_text_atomic

STRENGTHS: dict[str, tuple[str, list[float]]] = {
    "l2sp": ("alpha", [0.001, 0.01, 0.1, 1.0]),
    "ewc": ("lam", [0.01, 0.1, 1.0, 10.0]),
    "replay": ("ratio", [0.1, 0.25, 0.5, 0.75]),
    "lora": ("r", [4, 8, 16, 32]),
}
AUTO_SCHEMA = "forgetless.auto/1"


def searched(config: RunConfig) -> tuple[int, str, str, list[float]]:
    """(index in methods, method name, field, candidates) of the strength to search, or a clear error."""
    for i, entry in enumerate(config.methods):
        if entry.get("name") in STRENGTHS:
            field, values = STRENGTHS[entry["name"]]
            return i, entry["name"], field, values
    raise ForgetlessError(
        f"--auto searches the strength of l2sp, ewc, replay or lora, and the run lists none of them "
        f"({[m.get('name') for m in config.methods]})",
        "add one of those methods to `methods`, or drop --auto",
    )


def check_auto(config: RunConfig) -> None:
    searched(config)
    if not config.guard.budget:
        raise ForgetlessError(
            "--auto picks the most target gain within a budget, and the run has none",
            "set guard.budget (e.g. --budget '2pt,5%')",
        )
    if len(config.stages) != 1 or not config.stages[0].data.held_out:
        raise ForgetlessError(
            "--auto needs one stage with held-out data to measure target gain",
            "use a single stage and set its data.held_out (e.g. 100)",
        )


def auto_search(
    config: RunConfig, config_dir: Path, rungs: int = 3, resume: bool = False, fresh: bool = False
) -> dict[str, Any]:
    """Successive halving over the candidates; returns the report (also written as auto.json / auto.md).

    The search claims `output_dir` as a run does (`pipeline.folder`): earlier trials there are refused
    unless `resume` (each trial continues from its own checkpoints, or is re-scored if finished) or
    `fresh` (they are discarded).
    """
    from forgetless.pipeline.folder import claim, fingerprint
    from forgetless.pipeline.run import run

    check_auto(config)
    index, method, field, values = searched(config)
    values = list(config.guard.auto_values or values)
    out: Path = config.output_dir  # type: ignore[assignment]
    claim(out, {**fingerprint(config.model_dump(mode="json"), config_dir), "auto.rungs": rungs}, resume, fresh)
    total = config.training.steps
    alive, trials = list(values), []
    for rung in range(rungs):
        steps = total if rung == rungs - 1 else max(1, math.ceil(total / 2 ** (rungs - 1 - rung)))
        if rung == rungs - 1:
            alive = alive[:1]
        scored = []
        for value in alive:
            trial_config = _trial(config, index, field, value, steps, out / "auto" / f"{field}-{value:g}-steps-{steps}")
            methods, problems = build_methods(trial_config.methods)
            if problems:
                raise ForgetlessError(f"--auto made an invalid trial: {problems}", "report this as a bug")
            result = run(trial_config, methods, config_dir, resume=resume)
            trial = _summary(result, value, steps, rung, trial_config.output_dir)
            trials.append(trial)
            scored.append(trial)
        scored.sort(key=_rank)
        alive = [t["value"] for t in scored[: max(1, math.ceil(len(scored) / 2))]]
    best = trials[-1]
    report = {
        "schema": AUTO_SCHEMA,
        "method": method,
        "field": field,
        "candidates": values,
        "budget": str(config.guard.budget),
        "rungs": rungs,
        "trials": trials,
        "chosen": {"value": best["value"], "status": best["status"], "run": best["run"]},
    }
    write_json_atomic(out / "auto.json", report)
    write_text_atomic(out / "auto.md", auto_markdown(report))
    return report


def _trial(config: RunConfig, index: int, field: str, value: float, steps: int, out: Path) -> RunConfig:
    methods = [dict(m) for m in config.methods]
    methods[index][field] = int(value) if field == "r" else value
    training = config.training.model_copy(update={"steps": steps, "save_steps": max(steps, 1)})
    guard = config.guard.model_copy(update={"policy": "warn"})  # a trial is judged, not cut short
    return config.model_copy(update={"methods": methods, "training": training, "guard": guard, "output_dir": out})


def _summary(result: dict[str, Any], value: float, steps: int, rung: int, run_dir: Path) -> dict[str, Any]:
    target = next(
        (c for c in result["final"]["comparisons"] if c["role"] == "target" and c["metric"] == "perplexity"), None
    )
    return {
        "value": value,
        "steps": steps,
        "rung": rung,
        "target_change": None if target is None else target["relative"],
        "status": result["guard"]["status"],  # within | inconclusive | over (None: nothing budgeted)
        "checks": result["guard"]["final"],
        "run": str(run_dir),
    }


STATUS_RANK = {"within": 0, "inconclusive": 1}  # then over, or nothing checked


def _rank(trial: dict[str, Any]) -> tuple[int, float]:
    # Shown within budget first, then inconclusive; then the largest fall of the target's perplexity.
    change = trial["target_change"]
    return (STATUS_RANK.get(trial["status"], 2), change if change is not None else math.inf)


def auto_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# forgetless --auto: {report['method']}.{report['field']} against budget `{report['budget']}`",
        "",
        f"Successive halving over {report['candidates']} in {report['rungs']} rungs; chosen "
        f"**{report['field']} = {report['chosen']['value']:g}** ({_status_text(report['chosen']['status'])}).",
        "",
        f"| rung | steps | {report['field']} | target perplexity change | budget status | run |",
        "|---|---|---|---|---|---|",
    ]
    for t in report["trials"]:
        change = "-" if t["target_change"] is None else f"{t['target_change']:+.1%}"
        lines.append(f"| {t['rung']} | {t['steps']} | {t['value']:g} | {change} | {t['status'] or '-'} | {t['run']} |")
    return "\n".join(lines) + "\n"


def _status_text(status: str | None) -> str:
    return {
        "within": "within budget",
        "over": "OVER budget",
        "inconclusive": "inconclusive: not shown within budget",
    }.get(status or "", "no budgeted probe checked")
