"""Which sections, in which order, make the report of each command: eval, audit, run and repair."""

from __future__ import annotations

from functools import partial
from typing import Any

from markupsafe import Markup

from forgetless.report import sections as s
from forgetless.report.curves import dynamics_figure, repair_figure
from forgetless.report.forecast import forecast_figure
from forgetless.report.html import Section, diagnostics_section, figures_section, page
from forgetless.report.plots import change_figure, limits_of, loss_figure, matrix_figure, scores_figure
from forgetless.report.verdict import audit_verdict, eval_verdict, repair_verdict, run_verdict

CHANGE_CAPTION = (
    "Each general probe's primary metric, after against before, on the same items: a dot is the change, "
    "the bar its 95% paired interval (for perplexity: the interval of the difference over the base value). "
    "Red: forgot (the interval excludes zero), grey: kept within noise, green: improved."
)


def _change(audit: dict[str, Any], checks: list[dict[str, Any]] | None = None) -> tuple[str, str, Any]:
    caption = CHANGE_CAPTION + (" Dashed: the probe's budget limit." if checks else "")
    return (
        "What changed, probe by probe",
        caption,
        partial(change_figure, audit["comparisons"], limits=limits_of(checks or [])),
    )


def _audit_body(audit: dict[str, Any], checks: list[dict[str, Any]] | None = None) -> list[Section]:
    return [
        Section("Perplexity degradation", s.degradation_table(audit)),
        Section("Canary generations", s.canary_sections(audit)),
    ]


def eval_page(result: dict[str, Any]) -> str:
    model = result["model"]
    figures = [
        ("Scores", "Each probe's primary metric with its 95% interval.", partial(scores_figure, result["probes"]))
    ]
    sections = [
        Section("Scores", s.eval_table(result)),
        Section("Plots", figures_section(figures)),
        Section("Diagnostics", diagnostics_section(result)),
        Section(
            "Details",
            s.model_details({"Model": model})
            + s.scored_list(result)
            + s.keyvalues(
                [
                    ("suite", f"{result['suite']['name']} ({result['suite']['path']})"),
                    ("time", s.seconds(result.get("seconds"))),
                    ("forgetless", result.get("forgetless_version")),
                ]
            ),
        ),
    ]
    title = f"forgetless eval: {model['spec']}"
    subtitle = f"suite {result['suite']['name']}, {len(result['probes'])} probes"
    return page(title, sections, subtitle=subtitle, verdict=eval_verdict(result), created=result.get("created", ""))


def _audit_details(audit: dict[str, Any]) -> Any:
    return (
        s.model_details({"Base model": audit["base"]["model"], "Tuned model": audit["tuned"]["model"]})
        + s.scored_list(audit["base"])
        + s.keyvalues(
            [
                ("suite", f"{audit['suite']['name']} ({audit['suite']['path']})"),
                ("base evaluation", s.seconds(audit["base"].get("seconds"))),
                ("tuned evaluation", s.seconds(audit["tuned"].get("seconds"))),
                ("forgetless", audit.get("forgetless_version")),
            ]
        )
    )


def audit_page(audit: dict[str, Any]) -> str:
    checks = audit["guard"]["final"] if audit.get("guard") else None  # an audit against a budget
    false_alarm = audit["guard"].get("false_alarm") if audit.get("guard") else None
    sections = [
        Section("Per-probe change", s.probe_table(audit, checks, false_alarm)),
        *_audit_body(audit),
        Section("Plots", figures_section([_change(audit, checks)])),
        Section("Diagnostics", diagnostics_section(audit)),
        Section("Details", _audit_details(audit)),
    ]
    title = f"forgetless audit: {audit['tuned']['model']['spec']} against {audit['base']['model']['spec']}"
    subtitle = f"suite {audit['suite']['name']}; same items before and after"
    if audit.get("guard"):
        subtitle += f"; budget {audit['guard']['budget']}"
    return page(title, sections, subtitle=subtitle, verdict=audit_verdict(audit), created=audit.get("created", ""))


def run_page(result: dict[str, Any]) -> str:
    config, guard, final = result["config"], result["guard"], result["final"]
    names = [stage["name"] for stage in config["stages"]]
    figures = [_change(final, guard["final"] if guard["budget"] else None)]
    for i, stage in enumerate(result["stages"]):
        watch = stage.get("training", {}).get("watch")
        if watch:
            name = names[i]
            caption = (
                f"Stage {name}: each watched probe's change against the weights the stage started from, at every "
                "check; crosses: over budget (the interval of the loss wholly past the limit); dashed: limits and "
                "the guard's action."
            )
            build = partial(dynamics_figure, watch, target=f"stage_{name}")
            figures.append((f"Forgetting dynamics: stage {name}", caption, build))
            caption = (
                f"Stage {name}: each budgeted change (in its limit's unit, positive = worse) at every check, the "
                "shifted power law fitted to the first checks (filled) with its band, the limit (dashed), where the "
                "curve crosses it, and the forecast at the end with its interval; hollow: checks the fit did not see."
            )
            figures.append((f"Forecast: stage {name}", caption, partial(forecast_figure, watch)))
    if result.get("transfer"):
        caption = (
            "R[i][j]: score on stage j's held-out data after stage i (-log perplexity, higher is better; row 0: "
            "the base). BWT: mean of R[T][j] - R[j][j] (negative = forgetting); forgetting: mean drop from the best "
            "earlier score (positive = forgetting)."
        )
        figures.append(("Stage matrix R", caption, partial(matrix_figure, result["transfer"], names)))
    trainings = [(names[i], stage.get("training", {})) for i, stage in enumerate(result["stages"])]
    figures.append(
        (
            "Training loss",
            "Loss per logged optimizer step.",
            partial(loss_figure, trainings, stopped=guard.get("stopped")),
        )
    )
    models = {"Base model": result["baseline"]["model"]}
    if result["stages"]:
        models["Final model"] = result["stages"][-1]["model"]
    details = (
        s.model_details(models)
        + Markup("<h3>Timings</h3>")
        + s.keyvalues(s.run_timings(result))
        + s.folded_yaml("The resolved configuration (config.yaml)", config)
    )
    sections = [
        Section(
            "Final model against the base",
            s.probe_table(final, guard["final"] if guard["budget"] else None, guard.get("false_alarm")),
        ),
        *_audit_body(final),
        Section("Plots", figures_section(figures)),
        Section("Diagnostics", diagnostics_section(result)),
        Section("Details", details),
    ]
    methods = ", ".join(m["name"] for m in config["methods"]) or "full fine-tuning"
    title = f"forgetless run: {config['model']} with {methods}"
    budget = f"; budget {guard['budget']}, policy {guard['policy']}" if guard["budget"] else "; no forgetting budget"
    subtitle = f"{len(result['stages'])} of {len(names)} stage(s) trained ({', '.join(names)}){budget}"
    return page(title, sections, subtitle=subtitle, verdict=run_verdict(result), created=final.get("created", ""))


def repair_page(result: dict[str, Any]) -> str:
    chosen = next((p for p in result["curve"] if p["alpha"] == result["chosen_alpha"]), {"checks": []})
    audit = result["audit"]
    caption = (
        "Each budgeted probe's change against the base at every alpha scored (crosses: over budget), the "
        "target's change below; dashed: limits and the chosen alpha."
    )
    figures = [("The alpha searched", caption, partial(repair_figure, result)), _change(audit, chosen["checks"])]
    sections = [
        Section("The curve searched", s.fmt_alpha_rows(result)),
        Section(
            f"The repaired model (alpha {result['chosen_alpha']:g}) against the base",
            s.probe_table(audit, chosen["checks"]),
        ),
        *_audit_body(audit),
        Section("Plots", figures_section(figures)),
        Section("Diagnostics", diagnostics_section(result)),
        Section(
            "Details",
            _audit_details(audit)
            + s.keyvalues(
                [
                    ("budget", result["budget"]),
                    ("bisection steps", result["steps"]),
                    ("repaired model", result["model"]),
                ]
            ),
        ),
    ]
    title = f"forgetless repair: {result['tuned']['spec']} against {result['base']['spec']}"
    rule = f"; {result['rule']}" if result.get("rule") else ""
    subtitle = f"WiSE-FT interpolation against budget {result['budget']}{rule}"
    return page(title, sections, subtitle=subtitle, verdict=repair_verdict(result), created=result.get("created", ""))
