"""Change curves against one variable: forgetting over training steps (the watch), and over alpha (repair).

Both draw the same picture: one panel per unit (accuracy points, perplexity %) with every general
probe's change against the base and its budget limit, and a panel of its own for the target (whose
gain would otherwise flatten the general probes' lines). Checks over budget are marked with a red cross,
inconclusive ones with an amber ring (report.status's colours; unmarked: within); vertical lines mark
what was done (the guard's stop or rollback, the repair's chosen alpha).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forgetless.evaluation.results import point_status
from forgetless.report.status import STATUS_COLORS
from forgetless.report.theme import WIDTH, Theme, new_figure
from forgetless.report.units import axis_label, budget_change, budget_line, finite, unit_of, unit_suffix


@dataclass
class Series:
    name: str
    unit: str  # "points" | "percent"
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    over: list[tuple[float, float]] = field(default_factory=list)  # checks over budget (interval wholly past the limit)
    unclear: list[tuple[float, float]] = field(default_factory=list)  # inconclusive checks (neither over nor within)


@dataclass
class Mark:
    x: float
    text: str
    kind: str = "action"  # "action" (the guard stopped, alpha chosen) | "restored" (the weights kept)


def _change(metric: str, value: float, base: float) -> float | None:
    unit = unit_of(metric)
    if unit == "points":
        return (value - base) * 100
    if unit == "percent" and base:
        return (value / base - 1) * 100
    return None


def dynamics_figure(watch: dict[str, Any], theme: Theme, target: str | None = None) -> Any:
    """Each watched probe's change against the step-0 baseline over training steps, the budget, the guard's action."""
    points = sorted(watch.get("points", []), key=lambda p: p["step"])
    if len(points) < 2:
        return None
    base = points[0]["values"]
    series: dict[str, Series] = {}
    for name, (metric, base_value) in base.items():
        unit = unit_of(metric)
        if unit is None or not finite(base_value):
            continue
        s = series[name] = Series(name, unit)
        for p in points:
            if name in p["values"] and finite(p["values"][name][1]):
                y = _change(metric, p["values"][name][1], base_value)
                if y is not None:
                    s.xs.append(p["step"])
                    s.ys.append(y)
    for p in points:
        for c in p.get("checks", []):
            s = series.get(c["probe"])
            if c["status"] != "within" and s is not None and p["step"] in s.xs:
                marks_of = s.over if c["status"] == "over" else s.unclear
                marks_of.append((p["step"], s.ys[s.xs.index(p["step"])]))
    limits = {c["probe"]: (c["limit"], c["unit"]) for p in points for c in p.get("checks", []) if c["unit"] != "nats"}
    marks = []
    stopped = watch.get("stopped")
    if stopped:
        marks.append(Mark(stopped["step"], f"{stopped['action']} at step {stopped['step']}"))
        if stopped.get("restored_step") is not None:
            step = stopped["restored_step"]
            text = "restored the base weights (step 0)" if step == 0 else f"restored step {step}"
            marks.append(Mark(step, text, "restored"))
    general = [s for name, s in series.items() if name != target]
    target_series = series.get(target) if target else None
    return _draw(general, target_series, limits, marks, theme, "training step")


def repair_figure(result: dict[str, Any], theme: Theme) -> Any:
    """Repair's search: each budgeted probe's change and the target's change against alpha; the choice marked."""
    curve = sorted(result.get("curve", []), key=lambda p: p["alpha"])
    if not curve:
        return None
    series: dict[str, Series] = {}
    limits = {}
    for point in curve:
        for c in point["checks"]:
            key = c["probe"] if c["unit"] != "nats" else f"{c['probe']} (gold log-prob)"
            s = series.setdefault(key, Series(key, c["unit"]))
            s.xs.append(point["alpha"])
            s.ys.append(budget_change(c))
            if c["status"] != "within":
                (s.over if c["status"] == "over" else s.unclear).append((point["alpha"], s.ys[-1]))
            limits[key] = (c["limit"], c["unit"])
    target = None
    with_target = [p for p in curve if finite(p.get("target_change"))]
    if with_target:
        unit = unit_of(with_target[0]["target_metric"]) or "percent"
        target = Series(f"target ({with_target[0]['target_metric']})", unit)
        target.xs = [p["alpha"] for p in with_target]
        target.ys = [p["target_change"] * 100 for p in with_target]  # relative change or accuracy delta
    marks = [Mark(result["chosen_alpha"], f"chosen \u03b1 = {result['chosen_alpha']:g}")]
    rejected = result.get("next_alpha", result.get("next_over_alpha"))  # next_over_alpha: files before next_alpha
    if rejected is not None:
        point = next((p for p in curve if p["alpha"] == rejected), {})
        status = point_status(point) if point else None
        marks.append(Mark(rejected, f"{status or 'rejected'} at \u03b1 = {rejected:g}", "over"))
    # repair.json written before `accept` was chosen by the not-over rule
    rule = "shown within budget" if result.get("accept") == "within" else "not shown over budget"
    title = f"Repair: base + \u03b1 (tuned \u2212 base), the largest \u03b1 {rule}"
    return _draw(list(series.values()), target, limits, marks, theme, "\u03b1 (0 = base, 1 = the fine-tune)", title)


def _draw(
    general: list[Series],
    target: Series | None,
    limits: dict[str, tuple[float, str]],
    marks: list[Mark],
    theme: Theme,
    xlabel: str,
    title: str = "",
) -> Any:
    panels = [(u, [s for s in general if s.unit == u]) for u in ("points", "percent")]
    panels = [(u, group, False) for u, group in panels if group]
    if target is not None and target.xs:
        panels.append((target.unit, [target], True))
    if not panels:
        return None
    fig, axes = new_figure(WIDTH, 0.8 + 2.3 * len(panels), len(panels), 1, sharex=True)
    for index, (ax, (unit, group, is_target)) in enumerate(zip(axes[:, 0], panels, strict=True)):
        for i, s in enumerate(group):
            color = theme.target if is_target else theme.series[(general.index(s)) % len(theme.series)]
            ax.plot(
                s.xs, s.ys, color=color, marker="o", markersize=4, linewidth=2.2 if is_target else 1.6, label=s.name
            )
            if s.over:
                ax.scatter(
                    *zip(*s.over, strict=True),
                    marker="x",
                    s=70,
                    color=STATUS_COLORS["over"],
                    zorder=3,
                    label="over budget" if i == 0 else None,
                )
            if s.unclear:
                ax.scatter(
                    *zip(*s.unclear, strict=True),
                    marker="o",
                    s=60,
                    facecolors="none",
                    edgecolors=STATUS_COLORS["inconclusive"],
                    linewidths=1.5,
                    zorder=3,
                    label="inconclusive" if i == 0 else None,
                )
        if not is_target:
            drawn: dict[tuple[float, str], list[str]] = {}
            for s in group:
                if s.name in limits and limits[s.name][1] == unit:
                    drawn.setdefault(limits[s.name], []).append(s.name)
            for (limit, limit_unit), names in drawn.items():
                ax.axhline(
                    budget_line(limit, limit_unit),
                    color=theme.budget,
                    linestyle="--",
                    linewidth=1.1,
                    label=f"limit {limit:g}{unit_suffix(limit_unit)}: {', '.join(names)}",
                )
        ax.axhline(0, color=theme.muted, linewidth=0.8)
        ax.set_ylabel(axis_label(unit, what="target" if is_target else ""))
        for mark in marks:
            color = {"restored": theme.target, "over": theme.muted}.get(mark.kind, theme.budget)
            ax.axvline(mark.x, color=color, linestyle=":" if mark.kind != "action" else "--", linewidth=1.3)
            if index == 0:
                low, high = ax.get_xlim()
                right_half = mark.x > (low + high) / 2  # there the text goes left of its line, inside the axes
                ax.annotate(
                    mark.text,
                    (mark.x, 1),
                    xycoords=("data", "axes fraction"),
                    xytext=(-3 if right_half else 3, -3),
                    textcoords="offset points",
                    ha="right" if right_half else "left",
                    va="top",
                    fontsize=8,
                    color=color,
                )
        ax.legend(loc="best")
    axes[-1][0].set_xlabel(xlabel)
    if title:
        fig.suptitle(title, x=0.02, ha="left")
    return fig
