"""The HTML page of `forgetless compare`: the frontier first, then the table behind it."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from forgetless.pipeline.compare import COMPARE_HEADER, compare_rows
from forgetless.report.html import Section, page, parts, themed_figure


def verdict_line(result: dict[str, Any]) -> str:
    entries = result["entries"]
    best = [e["label"] for e in entries if e["pareto"]]
    line = f"{len(entries)} fine-tunes of one base; Pareto-optimal: {', '.join(best) or 'none'}"
    if result["budget"]:
        within = [e["label"] for e in entries if e["status"] in ("within", "noise")]
        line += f"; within budget {result['budget']}: {', '.join(within) or 'none'}"
    return line


def compare_page(result: dict[str, Any]) -> str:
    from forgetless.report.frontier import frontier_figure

    rows = [
        {"cells": row, "cls": "pareto" if e["pareto"] else ""}
        for row, e in zip(compare_rows(result), result["entries"], strict=True)
    ]
    frontier = themed_figure(lambda theme: frontier_figure(result), "target gain against what was kept")
    caption = Markup(
        "Each point is one fine-tune of the same base, scored on the same probes. Target gain: how much the target's "
        "perplexity fell. With a budget, x is the share of it the worst budgeted probe used (shaded: within); "
        "without, the mean retention of the general probes. Filled points are Pareto-optimal."
    )
    sections = [
        Section("Frontier", parts().figure("Frontier", frontier, caption) if frontier is not None else None),
        Section("Fine-tunes", parts().table(COMPARE_HEADER, rows, id="entries", numeric=(1, 2, 3))),
        Section("Sources", parts().keyvalues([(e["label"], e["source"]) for e in result["entries"]])),
    ]
    return page("forgetless compare", sections, verdict=verdict_line(result))
