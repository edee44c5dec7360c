"""The body of a report page: per-probe tables, perplexity degradation, canary diffs, details.

Each function takes JSON-ready results and returns Markup built by the macros of
`templates/parts.html.j2`, so every piece of text from the results is escaped there.
"""

from __future__ import annotations

from typing import Any

import yaml
from markupsafe import Markup

from forgetless.report.diff import side_by_side
from forgetless.report.html import parts
from forgetless.report.legends import budget_legend, eval_legend, verdict_legend
from forgetless.report.rows import EVAL_HEADER, eval_rows, scored_items
from forgetless.report.units import fmt_change, fmt_interval, fmt_value
from forgetless.report.verdict import check_cell


def _p(value: float | None) -> str:
    if value is None:
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3g}"


def probe_table(
    audit: dict[str, Any], checks: list[dict[str, Any]] | None = None, false_alarm: float | None = None
) -> Markup:
    """Every comparison, primary metric first per probe (later metrics muted), with its verdict and budget check;
    with `false_alarm`, the legend also states the budget's decision procedure (guard.procedure)."""
    by_probe = {(c["probe"], c["metric"]): c for c in checks or []}
    header = ["probe", "metric", "before", "after", "change", "95% interval of change", "p", "verdict"]
    header += ["budget"] if checks else []
    header.append("note")
    rows, seen = [], set()
    for c in audit["comparisons"]:
        primary = c["probe"] not in seen
        seen.add(c["probe"])
        label = c["probe"] + (" (target)" if c["role"] == "target" else "")
        direction = "\u2191" if c["higher_is_better"] else "\u2193"
        cells: list[Any] = [
            label if primary else "",
            f"{c['metric']} {direction}",
            fmt_value(c["metric"], c["before"]),
            fmt_value(c["metric"], c["after"]),
            fmt_change(c),
            fmt_interval(c),
            _p(c["p_value"]),
            parts().pill(c["verdict"], c["verdict"]),
        ]
        if checks:
            check = by_probe.get((c["probe"], c["metric"]))
            cells.append(check_cell(check) if check else "")
        cells.append(c.get("note", ""))
        rows.append({"cells": cells, "cls": "" if primary else "secondary"})
    legend = Markup("<p class='note'>{}</p>").format(
        verdict_legend(audit["comparisons"])
        + " \u2191 higher is better, \u2193 lower is better; accuracy changes are in percentage points."
        + (f" {budget_legend(false_alarm)}" if checks and false_alarm else "")
    )
    return parts().table(header, rows, id="probes", numeric=(2, 3, 4, 5, 6)) + legend


def degradation_table(audit: dict[str, Any]) -> Markup | None:
    """Perplexity degradation (ppl_after / ppl_before - 1) of every perplexity probe, with bits per byte."""
    bpb = {c["probe"]: c for c in audit["comparisons"] if c["metric"] == "bits_per_byte"}
    rows = []
    for c in audit["comparisons"]:
        if c["metric"] != "perplexity":
            continue
        note = c.get("note", "").removeprefix("perplexity degradation ")
        b = bpb.get(c["probe"])
        rows.append(
            {
                "cells": [
                    c["probe"] + (" (target)" if c["role"] == "target" else ""),
                    f"{c['before']:.2f} \u2192 {c['after']:.2f}",
                    note or (f"{c['relative']:+.1%}" if c.get("relative") is not None else ""),
                    f"{b['before']:.4f} \u2192 {b['after']:.4f}" if b else "",
                    parts().pill(c["verdict"], c["verdict"]),
                ],
                "cls": "",
            }
        )
    if not rows:
        return None
    header = ["probe", "perplexity", "degradation (95% interval)", "bits per byte", "verdict"]
    note = Markup("<p class='note'>{}</p>").format(
        "Degradation = perplexity after / perplexity before - 1 on the same text with the same tokenizer: "
        "positive = worse (for the target, negative = gained). Bits per byte compare across tokenizers."
    )
    return parts().table(header, rows, id="degradation", numeric=(1, 2, 3)) + note


def canary_sections(audit: dict[str, Any]) -> Markup | None:
    """Each canary probe's generations, base and tuned side by side, differences marked word by word."""
    before = {p["name"]: p for p in audit["base"]["probes"]}
    notes = {c["probe"]: c.get("note", "") for c in audit["comparisons"] if c["metric"] == "unchanged"}
    out = []
    for probe in audit["tuned"]["probes"]:
        if probe["kind"] != "canary" or probe["name"] not in before:
            continue
        old, new = before[probe["name"]]["items"], probe["items"]
        rows = []
        for i, prompt in enumerate(new["prompt"]):
            base_text, tuned_text = old["generation"][i], new["generation"][i]
            left, right = side_by_side(base_text, tuned_text)
            same = base_text == tuned_text
            expect = ""
            if new.get("has_expect") and new["has_expect"][i]:
                mark = {1: "\u2713", 0: "\u2717"}
                expect = f"expected text: base {mark[old['hit'][i]]}, tuned {mark[new['hit'][i]]}"
            rows.append(
                {
                    "prompt": prompt,
                    "base": left,
                    "tuned": right,
                    "status": "same" if same else "changed",
                    "status_kind": "" if same else "noise",
                    "expect": expect,
                }
            )
        out.append(parts().canary(probe["name"], rows, notes.get(probe["name"], "")))
    return Markup("").join(out) if out else None


def eval_table(result: dict[str, Any]) -> Markup:
    rows = [{"cells": row, "cls": ""} for row in eval_rows(result)]
    legend = eval_legend(result)
    note = Markup("<p class='note'>{}</p>").format(legend) if legend else Markup("")
    return parts().table(EVAL_HEADER, rows, id="probes", numeric=(2, 3, 5, 6)) + note


def model_details(models: dict[str, dict[str, Any]]) -> Markup:
    """One key-value list per model (spec, source, fingerprint, dtype...): which weights these numbers are of."""
    out = []
    for label, described in models.items():
        items = [(key, "" if value is None else str(value)) for key, value in described.items()]
        out.append(Markup("<h3>{}</h3>").format(label) + parts().keyvalues(items))
    return Markup("").join(out)


def scored_list(evaluation: dict[str, Any]) -> Markup:
    """What each probe scored (task, split, items), for the probes that say it."""
    items = scored_items(evaluation)
    return Markup("<h3>What each probe scored</h3>") + keyvalues(items) if items else Markup("")


def keyvalues(items: list[tuple[str, Any]]) -> Markup:
    return parts().keyvalues([(k, v) for k, v in items if v not in (None, "")])


def folded_yaml(summary: str, data: Any) -> Markup:
    return parts().folded(summary, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def seconds(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) else ""


def run_timings(result: dict[str, Any]) -> list[tuple[str, Any]]:
    """Training, watch and evaluation times of a run, stage by stage."""
    items: list[tuple[str, Any]] = [("baseline evaluation", seconds(result["baseline"].get("seconds")))]
    for i, stage in enumerate(result["stages"]):
        name = result["config"]["stages"][i]["name"] if i < len(result["config"]["stages"]) else str(i + 1)
        training = stage.get("training", {})
        items.append((f"stage {name}: training", seconds(training.get("train_runtime"))))
        watch = training.get("watch")
        if watch:
            share = f" ({watch['overhead']:.0%} of training time)" if watch.get("overhead") is not None else ""
            checks = len([p for p in watch["points"] if p["step"] > 0])
            items.append((f"stage {name}: {checks} watch checks", seconds(watch.get("watch_seconds")) + share))
        items.append((f"stage {name}: evaluation", seconds(stage.get("seconds"))))
    items.append(("processes", result.get("world_size")))
    return items


def fmt_alpha_rows(result: dict[str, Any]) -> Markup:
    """The repair curve as a table (the same rows as the terminal and repair.md)."""
    from forgetless.report.repair import curve_table

    header, rows = curve_table(result)
    return parts().table(header, [{"cells": r, "cls": "chosen" if "(chosen)" in r[0] else ""} for r in rows])
