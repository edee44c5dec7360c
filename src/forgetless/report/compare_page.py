"""`forgetless compare` in Markdown and HTML: the table of fine-tunes, then the page with the frontier first."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from forgetless.report.html import Section, page, parts, themed_figure
from forgetless.report.markdown import table

COMPARE_HEADER = ["fine-tune", "target gain", "general retention", "budget used", "status", "Pareto"]


def compare_rows(result: dict[str, Any]) -> list[list[str]]:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}%"

    return [
        [
            e["label"],
            pct(e["target_gain"]),
            pct(e["retention"]),
            pct(e["budget_used"]),
            e["status"] or "-",
            "yes" if e["pareto"] else "",
        ]
        for e in result["entries"]
    ]


def compare_markdown(result: dict[str, Any]) -> str:
    budget = f"budget `{result['budget']}`" if result["budget"] else "no budget"
    best = [e["label"] for e in result["entries"] if e["pareto"]]
    return "\n".join(
        [
            f"# forgetless compare: {len(result['entries'])} fine-tunes, {budget}",
            "",
            "Target gain: the fall of the target's perplexity against the base (%). General retention: the mean "
            "after/before over general probes (accuracy) or before/after (perplexity), 100% = nothing lost. "
            "Budget used: the worst budgeted probe's estimated change over its limit. Status: `within` = every "
            "budgeted probe's interval wholly inside its limit, `over` = some interval wholly past it, "
            "`inconclusive` = neither (not shown within, whatever the budget used).",
            "",
            table(COMPARE_HEADER, compare_rows(result)),
            "",
            f"Pareto-optimal (nothing else gains more while keeping as much): {', '.join(best) or 'none'}.",
            "",
            "![frontier](frontier.png)",
            "",
        ]
    )


def verdict_line(result: dict[str, Any]) -> str:
    entries = result["entries"]
    best = [e["label"] for e in entries if e["pareto"]]
    line = f"{len(entries)} fine-tunes of one base; Pareto-optimal: {', '.join(best) or 'none'}"
    if result["budget"]:
        within = [e["label"] for e in entries if e["status"] == "within"]  # shown within: nothing else counts
        line += f"; within budget {result['budget']}: {', '.join(within) or 'none'}"
        unclear = [e["label"] for e in entries if e["status"] in ("inconclusive", "noise")]
        if unclear:
            line += f"; inconclusive (not shown within): {', '.join(unclear)}"
    return line


def _pill(status: str) -> Any:
    """A status in its colour (report.status); a dash without a budget."""
    return parts().pill(status, status) if status else "-"


def compare_page(result: dict[str, Any], first: list[Section] | None = None) -> str:
    """The page: `first` (the demo's generation changes), then the frontier, the table and the sources."""
    from forgetless.report.frontier import frontier_figure

    status = COMPARE_HEADER.index("status")
    rows = [
        {"cells": [*row[:status], _pill(e["status"]), *row[status + 1 :]], "cls": "pareto" if e["pareto"] else ""}
        for row, e in zip(compare_rows(result), result["entries"], strict=True)
    ]
    frontier = themed_figure(lambda theme: frontier_figure(result), "target gain against what was kept")
    caption = Markup(
        "Each point is one fine-tune of the same base, scored on the same probes. Target gain: how much the target's "
        "perplexity fell. With a budget, x is the share of it the worst budgeted probe's estimate used (shaded: "
        "estimates inside the limits) and the colour is the status: green within, amber inconclusive (not shown "
        "within), red over; without, x is the mean retention of the general probes. Filled points are "
        "Pareto-optimal."
    )
    sections = [
        *(first or []),
        Section("Frontier", parts().figure("Frontier", frontier, caption) if frontier is not None else None),
        Section("Fine-tunes", parts().table(COMPARE_HEADER, rows, id="entries", numeric=(1, 2, 3))),
        Section("Sources", parts().keyvalues([(e["label"], e["source"]) for e in result["entries"]])),
    ]
    return page("forgetless compare", sections, verdict=verdict_line(result))
