"""Rows for tables: the same numbers feed the terminal table and the Markdown summary."""

from __future__ import annotations

from typing import Any


def _num(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def eval_rows(result: dict[str, Any]) -> list[list[str]]:
    """probe, metric, value, 95% interval, direction, items, seconds (primary metric first)."""
    rows = []
    for probe in result["probes"]:
        metrics = probe["metrics"]
        order = [probe["primary"]] + [m for m in metrics if m != probe["primary"]]
        for metric in (m for m in order if m in metrics):
            m = metrics[metric]
            interval = f"[{_num(m['low'])}, {_num(m['high'])}]" if m["low"] is not None else ""
            seconds = f"{probe['seconds']:.1f}" + (" (cached)" if probe.get("cached") else "")
            direction = "higher better" if m["higher_is_better"] else "lower better"
            rows.append(
                [probe["name"], metric, _num(m["value"], 4), interval, direction, str(probe["n_items"]), seconds]
            )
        if not metrics:
            rows.append([probe["name"], "generations", "", "", "", str(probe["n_items"]), f"{probe['seconds']:.1f}"])
    return rows


def scored_items(evaluation: dict[str, Any]) -> list[tuple[str, str]]:
    """(probe, what it scored) for the probes that say it, e.g. ("arc_easy", "lm-eval arc_easy test, 300 of 2376")."""
    return [(p["name"], p["scored"]) for p in evaluation["probes"] if p.get("scored")]


def scored_lines(evaluation: dict[str, Any]) -> list[str]:
    """Markdown lines naming what each probe scored (none when no probe says it)."""
    items = scored_items(evaluation)
    return ["What each probe scored:", "", *[f"- {name}: {what}" for name, what in items], ""] if items else []


EVAL_HEADER = ["probe", "metric", "value", "95% interval", "direction", "items", "seconds"]
AUDIT_HEADER = ["probe", "metric", "before", "after", "delta", "95% interval of delta", "p", "verdict"]


def audit_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for c in result["comparisons"]:
        interval = f"[{c['low']:+.4f}, {c['high']:+.4f}]" if c["low"] is not None else ""
        p = "" if c["p_value"] is None else "<0.001" if c["p_value"] < 0.001 else f"{c['p_value']:.3g}"
        label = c["probe"] + (" (target)" if c["role"] == "target" else "")
        rows.append(
            [
                label,
                c["metric"],
                _num(c["before"], 4),
                _num(c["after"], 4),
                f"{c['delta']:+.4f}",
                interval,
                p,
                c["verdict"],
            ]
        )
    return rows


COMPARE_HEADER = ["method", "probe", "metric", "before", "after", "delta [95% interval]", "verdict"]


def comparison_rows(audits: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per method and probe (primary metric only), target first: methods side by side."""
    rows = []
    for method, audit in audits.items():
        primary: dict[str, dict[str, Any]] = {}
        for c in audit["comparisons"]:
            primary.setdefault(c["probe"], c)
        ordered = sorted(primary.values(), key=lambda c: c["role"] != "target")
        for c in ordered:
            interval = f" [{c['low']:+.3f}, {c['high']:+.3f}]" if c["low"] is not None else ""
            label = c["probe"] + (" (target)" if c["role"] == "target" else "")
            rows.append(
                [
                    method,
                    label,
                    c["metric"],
                    _num(c["before"], 3),
                    _num(c["after"], 3),
                    f"{c['delta']:+.3f}{interval}",
                    c["verdict"],
                ]
            )
    return rows
