"""The repair curve as table rows (terminal and Markdown) and the repair.md summary."""

from __future__ import annotations

from typing import Any

from forgetless.evaluation.results import point_status
from forgetless.report.markdown import table
from forgetless.report.rows import AUDIT_HEADER, audit_rows


def _unit(unit: str) -> str:
    return "pt" if unit == "points" else "%"


def curve_table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per alpha scored: each budgeted probe's loss and status, the target's change, the alpha's status
    (within / inconclusive / over; read from the checks of repair.json files written before `status`)."""
    limits: dict[str, str] = {}
    for point in result["curve"]:
        for c in point["checks"]:
            limits.setdefault(c["probe"], f"{c['probe']} (limit {c['limit']:g}{_unit(c['unit'])})")
    has_target = any(p["target_change"] is not None for p in result["curve"])
    header = ["alpha", *limits.values(), *(["target change"] if has_target else []), "status"]
    rows = []
    for point in result["curve"]:
        checks = {c["probe"]: c for c in point["checks"]}
        cells = [
            f"{checks[p]['change'] + 0.0:+.1f}{_unit(checks[p]['unit'])} {checks[p]['status']}" if p in checks else ""
            for p in limits
        ]
        if has_target:
            change = point["target_change"]
            cells.append("" if change is None else f"{point['target_metric']} {change + 0.0:+.1%}")
        alpha = f"{point['alpha']:g}" + (" (chosen)" if point["alpha"] == result["chosen_alpha"] else "")
        rows.append([alpha, *cells, point_status(point) or "-"])
    return header, rows


def repair_markdown(result: dict[str, Any]) -> str:
    header, rows = curve_table(result)
    return "\n".join(
        [
            f"# forgetless repair: {result['tuned']['spec']} against {result['base']['spec']}",
            "",
            f"**{result['summary']}**",
            "",
            f"Budget `{result['budget']}` on suite `{result['suite']['name']}`; {result['steps']} bisection steps "
            f"(alpha exact to 1/{2 ** result['steps']}). The repaired model is `{result['model']}`: "
            "theta_base + alpha * (theta_tuned - theta_base), or the adapter with every LoRA B times alpha.",
            "",
            f"Chosen by {rule_text(result)}; its status: **{chosen_status(result)}**.",
            "",
            "## The curve searched",
            "",
            table(header, rows),
            "",
            "A probe's change is its loss against the base (accuracy points dropped, perplexity % risen). "
            "`over`: the interval of the loss lies wholly past the limit (judged at the run's false-alarm rate "
            "split over the alphas scored); `within`: wholly inside; `inconclusive`: the interval straddles the "
            "limit: neither over nor within. An alpha's status is over when any probe is over, within only when "
            "every probe is within, inconclusive otherwise; alpha 0 is the base, within by definition.",
            "",
            f"## The repaired model (alpha {result['chosen_alpha']:g}) against the base",
            "",
            f"**{result['audit']['summary']['headline']}**",
            "",
            table(AUDIT_HEADER, audit_rows(result["audit"])),
            "",
        ]
    )


def rule_text(result: dict[str, Any]) -> str:
    """Which rule chose alpha; repair.json files written before `accept` were chosen as not-over."""
    if "rule" in result:
        return result["rule"]
    return "the largest alpha not shown over budget (written before `accept`: the not-over rule)"


def chosen_status(result: dict[str, Any]) -> str:
    """The repaired model's status: `status`, or the chosen point's (files written before `status`)."""
    if result.get("status"):
        return result["status"]
    chosen = next((p for p in result["curve"] if p["alpha"] == result["chosen_alpha"]), None)
    return (point_status(chosen) if chosen else None) or "not checked"
