"""The frontier plot of `forgetless compare`: target gain against what was kept, one point per fine-tune.

With a budget the x axis is the share of the budget used by the worst budgeted probe's estimate (the
region up to 100% is shaded) and each point is coloured by its status (report.status: within green,
inconclusive amber, over red; a point under 100% can be inconclusive); without one the x axis is the
mean retention of the general probes.
Pareto-optimal fine-tunes (none better on both axes) are filled and joined; the rest are hollow.
"""

from __future__ import annotations

from typing import Any

from forgetless.report.status import STATUSES, status_color


def frontier_figure(comparison: dict[str, Any]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [e for e in comparison["entries"] if e["target_gain"] is not None]
    budgeted = bool(comparison["budget"])
    x_of = (lambda e: e["budget_used"]) if budgeted else (lambda e: e["retention"])  # noqa: E731
    entries = [e for e in entries if x_of(e) is not None]
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    if budgeted:
        right = max([100.0, *(x_of(e) for e in entries)]) * 1.08
        ax.axvspan(
            min([0.0, *(x_of(e) for e in entries)]) - 5,
            100,
            color="grey",  # an estimate inside the limits is not yet within: the points' colours say that
            alpha=0.12,
            label=f"estimate inside the limits ({comparison['budget']})",
        )
        ax.axvline(100, color="grey", linewidth=1, linestyle="--")
        ax.set_xlim(right=right)
        ax.set_xlabel("budget used by the worst probe (%)  <- lower is better")
    else:
        ax.axvline(100, color="grey", linewidth=1, linestyle="--")
        ax.set_xlabel("general retention: mean after/before over general probes (%)  higher is better ->")
    front = sorted((e for e in entries if e["pareto"]), key=x_of)
    if len(front) > 1:
        ax.plot([x_of(e) for e in front], [e["target_gain"] for e in front], color="grey", linewidth=1, zorder=1)
    for e in entries:
        color = status_color(e["status"])
        ax.scatter(
            x_of(e),
            e["target_gain"],
            s=70,
            zorder=2,
            edgecolors=color,
            linewidths=1.8,
            facecolors=color if e["pareto"] else "none",
        )
        ax.annotate(e["label"], (x_of(e), e["target_gain"]), textcoords="offset points", xytext=(6, 5), fontsize=8)
    ax.set_ylabel("target gain: perplexity fall (%)  higher is better ->")
    ax.set_title("What each fine-tune gained against what it kept (filled: Pareto-optimal)")
    ax.grid(alpha=0.3)
    if budgeted:
        for status in [s for s in STATUSES if any(e["status"] == s for e in entries)]:
            ax.scatter([], [], s=70, edgecolors=status_color(status), facecolors="none", linewidths=1.8, label=status)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def frontier_png(comparison: dict[str, Any]) -> bytes:
    import io

    import matplotlib.pyplot as plt

    fig = frontier_figure(comparison)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
