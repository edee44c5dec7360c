"""The report's figures of one result: per-probe change, eval scores, the stage matrix R, the loss.

Each function takes the JSON-ready result pieces and a Theme and returns a matplotlib Figure (or
None when there is nothing to draw). Call them inside `matplotlib.rc_context(theme.rc())`:
`report.html.themed_figure` does, once per theme. The curves over training steps and over the
repair's alpha are in `report/curves.py`.
"""

from __future__ import annotations

from typing import Any

from forgetless.report.theme import WIDTH, Theme, new_figure
from forgetless.report.units import axis_label, budget_line, change, finite, unit_of, unit_suffix

Limits = dict[str, tuple[float, str]]  # probe -> (limit, unit)


def primary_comparisons(comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each probe's first (primary) comparison, in order."""
    seen: dict[str, dict[str, Any]] = {}
    for c in comparisons:
        seen.setdefault(c["probe"], c)
    return list(seen.values())


def limits_of(checks: list[dict[str, Any]]) -> Limits:
    """{probe: (limit, unit)} from budget checks on primary metrics (a nats limit bounds gold_logprob)."""
    return {c["probe"]: (c["limit"], c["unit"]) for c in checks if c["unit"] != "nats"}


def change_figure(comparisons: list[dict[str, Any]], theme: Theme, limits: Limits | None = None) -> Any:
    """A forest plot: each general probe's primary change with its 95% paired interval, by verdict.

    One panel per unit (accuracy points, perplexity %); a budget limit, when there is one, is a
    dashed mark on its probe's row.
    """
    limits = limits or {}
    rows: dict[str, list[tuple[dict[str, Any], tuple[float, float | None, float | None, str]]]] = {}
    for c in primary_comparisons(comparisons):
        measured = change(c) if c["role"] == "general" else None
        if measured is not None:
            rows.setdefault(measured[3], []).append((c, measured))
    if not rows:
        return None
    units = [u for u in ("points", "percent") if u in rows]
    sizes = [len(rows[u]) for u in units]
    fig, axes = new_figure(WIDTH, 0.9 + 0.42 * sum(sizes) + 0.75 * len(units), len(units), 1, height_ratios=sizes)
    verdicts_seen: dict[str, Any] = {}
    budget_handle = None
    for ax, unit in zip(axes[:, 0], units, strict=True):
        entries = rows[unit]
        xs: list[float] = [0.0]
        for y, (c, (value, low, high, _)) in enumerate(reversed(entries)):
            color = theme.verdict(c["verdict"])
            xerr = [[value - low], [high - value]] if low is not None and high is not None else None
            handle = ax.errorbar(value, y, xerr=xerr, fmt="o", color=color, ecolor=color, capsize=4, markersize=7)
            verdicts_seen.setdefault(c["verdict"], handle)
            ax.annotate(
                f"{value:+.1f}{unit_suffix(unit)}",
                (value, y),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=8,
                color=color,
            )
            xs += [v for v in (value, low, high) if v is not None]
            if c["probe"] in limits and limits[c["probe"]][1] == unit:
                x = budget_line(*limits[c["probe"]])
                (budget_handle,) = ax.plot([x, x], [y - 0.38, y + 0.38], color=theme.budget, linestyle="--", lw=1.6)
                xs.append(x)
        ax.axvline(0, color=theme.muted, linewidth=0.9)
        ax.set_yticks(range(len(entries)), [c["probe"] for c, _ in reversed(entries)])
        ax.set_ylim(-0.6, len(entries) - 0.3)
        ax.grid(axis="y", visible=False)
        pad = max(1.0, (max(xs) - min(xs)) * 0.12)
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
        ax.set_xlabel(axis_label(unit, axis="x"))
    handles = [verdicts_seen[v] for v in ("forgot", "kept", "improved") if v in verdicts_seen]
    labels = [v for v in ("forgot", "kept", "improved") if v in verdicts_seen]
    if budget_handle is not None:
        handles.append(budget_handle)
        labels.append("budget limit")
    fig.legend(handles, labels, loc="outside upper right", ncols=len(labels), frameon=False)
    return fig


def scores_figure(probes: list[dict[str, Any]], theme: Theme) -> Any:
    """One model's scores: each probe's primary metric with its 95% interval, accuracies and perplexities apart."""
    rows: dict[str, list[tuple[str, float, float | None, float | None]]] = {}
    for p in probes:
        m = p["metrics"].get(p["primary"])
        unit = unit_of(p["primary"])
        if m is None or unit is None or not finite(m["value"]):
            continue
        scale = 100.0 if unit == "points" else 1.0
        low, high = (
            (m["low"] * scale, m["high"] * scale) if finite(m.get("low")) and finite(m.get("high")) else (None, None)
        )
        rows.setdefault(unit, []).append((f"{p['name']} ({p['primary']})", m["value"] * scale, low, high))
    if not rows:
        return None
    units = [u for u in ("points", "percent") if u in rows]
    sizes = [len(rows[u]) for u in units]
    fig, axes = new_figure(WIDTH, 0.9 + 0.42 * sum(sizes) + 0.75 * len(units), len(units), 1, height_ratios=sizes)
    for ax, unit in zip(axes[:, 0], units, strict=True):
        entries = list(reversed(rows[unit]))
        for y, (_, value, low, high) in enumerate(entries):
            xerr = [[value - low], [high - value]] if low is not None and high is not None else None
            ax.errorbar(value, y, xerr=xerr, fmt="o", color=theme.series[0], capsize=4, markersize=7)
            ax.annotate(
                f"{value:.1f}" if unit == "points" else f"{value:.2f}",
                (value, y),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=8,
            )
        ax.set_yticks(range(len(entries)), [e[0] for e in entries])
        ax.set_ylim(-0.6, len(entries) - 0.3)
        ax.grid(axis="y", visible=False)
        if unit == "points":
            ax.set_xlim(0, 100)
            ax.set_xlabel("accuracy (%), higher is better \u2192")
        else:
            values = [v for e in entries for v in e[1:] if v is not None]
            if max(values) / max(min(values), 1e-9) > 20:
                ax.set_xscale("log")
            ax.set_xlabel("perplexity, lower is better \u2190")
    return fig


def matrix_figure(transfer: dict[str, Any], stage_names: list[str], theme: Theme) -> Any:
    """The stage matrix R as a heatmap (row 0 the base), with BWT and the forgetting measure in the title."""
    import numpy as np

    R = np.array(transfer["R"], dtype=float)
    if R.size == 0:
        return None
    n_rows, n_cols = R.shape
    names = stage_names[:n_cols]
    fig, axes = new_figure(max(6.5, 2.4 + 1.3 * n_cols), 1.9 + 0.55 * n_rows)
    ax = axes[0][0]
    image = ax.imshow(R, cmap=theme.cmap, aspect="auto")
    low, high = float(np.nanmin(R)), float(np.nanmax(R))
    for i in range(n_rows):
        for j in range(n_cols):
            level = 0.5 if high == low else (R[i, j] - low) / (high - low)
            color = "#000000" if level > 0.55 else "#ffffff"  # viridis is light at the top
            ax.text(j, i, f"{R[i, j]:.3f}", ha="center", va="center", fontsize=9, color=color)
    ax.set_xticks(range(n_cols), names)
    ax.set_yticks(range(n_rows), ["base", *(f"after {n}" for n in stage_names[: n_rows - 1])])
    ax.set_xlabel("held-out data of stage")
    ax.set_ylabel("model")
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="-log perplexity\nhigher is better \u2191")

    def show(name: str, key: str) -> str:
        value = transfer.get(key)
        return f"{name} {value:+.3f}" if finite(value) else f"{name} n/a"

    # Two stages or more: a one-stage run has no matrix (pipeline.run.transfer_metrics).
    title = f"{show('BWT', 'bwt')} (negative = forgetting)\n{show('forgetting', 'forgetting')} (positive = forgetting)"
    fig.suptitle(title, x=0.02, ha="left", fontsize=10)
    return fig


def loss_figure(stages: list[tuple[str, dict[str, Any]]], theme: Theme, stopped: dict[str, Any] | None = None) -> Any:
    """The training loss of every stage on one step axis (and the regularizer's penalty, when recorded)."""
    curves = [(name, t) for name, t in stages if t.get("loss_curve")]
    if not curves:
        return None
    fig, axes = new_figure(WIDTH, 3.4)
    ax, twin, offset = axes[0][0], None, 0
    for i, (name, training) in enumerate(curves):
        steps = [offset + s for s, _ in training["loss_curve"]]
        color = theme.series[i % len(theme.series)]
        ax.plot(
            steps,
            [v for _, v in training["loss_curve"]],
            color=color,
            marker="." if len(steps) < 40 else None,
            label=f"loss ({name})" if len(curves) > 1 else "loss",
        )
        if i:
            ax.axvline(offset, color=theme.muted, linestyle=":", linewidth=1)
        penalty = training.get("penalty_curve") or []
        if penalty:
            twin = twin or ax.twinx()
            twin.plot(
                [offset + s for s, _ in penalty],
                # each entry is {penalty/NAME: value}: the total the loss carried (one term per method)
                [sum(v.values()) if isinstance(v, dict) else v for _, v in penalty],
                color=color,
                linestyle="--",
                linewidth=1.1,
                label=f"penalty ({name})" if len(curves) > 1 else "penalty",
            )
        if stopped and stopped.get("stage") == name:
            at = offset + stopped["step"]
            ax.axvline(at, color=theme.budget, linestyle="--", linewidth=1.2)
            ax.annotate(
                f"guard: {stopped['action']} at step {stopped['step']}",
                (at, 1),
                xycoords=("data", "axes fraction"),
                xytext=(-4, -4),
                textcoords="offset points",
                ha="right",
                va="top",
                color=theme.budget,
                fontsize=8,
            )
        offset = steps[-1] if steps else offset
    ax.set_xlabel("optimizer step" + (" (stages one after another)" if len(curves) > 1 else ""))
    ax.set_ylabel("training loss\nlower is better \u2193")
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        twin.set_ylabel("regularizer penalty")
        twin.grid(False)
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, loc="lower left")
    return fig
