"""Markdown summaries of an eval and of an audit."""

from __future__ import annotations

from typing import Any

from forgetless.evaluation.results import BudgetCheck, budget_state, guard_status
from forgetless.report.legends import budget_legend, eval_legend, verdict_legend
from forgetless.report.rows import AUDIT_HEADER, EVAL_HEADER, audit_rows, eval_rows, scored_lines


def table(header: list[str], rows: list[list[str]]) -> str:
    clean = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in clean])


def eval_markdown(result: dict[str, Any]) -> str:
    model = result["model"]
    return "\n".join(
        [
            f"# forgetless eval: {model['spec']} on suite `{result['suite']['name']}`",
            "",
            f"Model fingerprint `{model['fingerprint']}`, forgetless {result['forgetless_version']}, "
            f"{result['created']}, {result['seconds']:.0f} s.",
            "",
            table(EVAL_HEADER, eval_rows(result)),
            "",
            *scored_lines(result),
            eval_legend(result),
            "",
        ]
    )


def audit_markdown(result: dict[str, Any]) -> str:
    base, tuned = result["base"]["model"], result["tuned"]["model"]
    canaries = _canary_sections(result)
    return "\n".join(
        [
            f"# forgetless audit: {tuned['spec']} against {base['spec']}",
            "",
            f"**{result['summary']['headline']}**",
            "",
            f"Suite `{result['suite']['name']}`. {verdict_legend(result['comparisons'])}",
            "",
            table(AUDIT_HEADER, audit_rows(result)),
            "",
            *scored_lines(result["base"]),
            *_budget_lines(result.get("guard")),
            *canaries,
        ]
    )


def _budget_lines(guard: dict[str, Any] | None) -> list[str]:
    """An audit against a budget: its status (within / inconclusive / over), the procedure, and each budgeted
    probe's change against its limit."""
    if not guard:
        return []
    checks = [BudgetCheck(**c) for c in guard["final"]]
    state = budget_state(checks, f"`{guard['budget']}`")
    status = guard_status(guard) or "not checked"
    legend = budget_legend(guard.get("false_alarm"))
    lines = ["## Forgetting budget", "", f"Status: **{status}**. {state[0].upper()}{state[1:]}.", ""]
    lines += [legend, ""] if legend else []
    lines += [f"- {c.describe()}" for c in checks]
    return [*lines, ""]


def _canary_sections(result: dict[str, Any]) -> list[str]:
    lines = []
    before = {p["name"]: p for p in result["base"]["probes"]}
    for probe in result["tuned"]["probes"]:
        if probe["kind"] != "canary":
            continue
        old = before[probe["name"]]["items"]["generation"]
        rows = [
            [repr(p)[:60], repr(a)[:80], repr(b)[:80], "same" if a == b else "changed"]
            for p, a, b in zip(probe["items"]["prompt"], old, probe["items"]["generation"], strict=True)
        ]
        lines += [f"## Canary generations: {probe['name']}", "", table(["prompt", "base", "tuned", ""], rows), ""]
    return lines
