"""Figures of a run's diagnostics: drift by layer, Fisher kept vs new, gradient interference.

`diagnostic_figures(result)` reads `result["stages"][i]["diagnostics"]` (forgetless.diagnostics) and
returns (title, caption, figure) triples for the HTML report. Figures are `matplotlib.figure.Figure`
objects made without pyplot (no global state, nothing to close); they take their colors from the
matplotlib rc settings in force when they are drawn, so a theme's `rc_context` applies. matplotlib
is imported only when a figure is drawn.
"""

from __future__ import annotations

from typing import Any

from forgetless.diagnostics.layers import group_key

LAYERS_AXIS = "layer: embeddings, blocks 0.. (input -> output), final norm, head"


def _figure(width: float = 8.0, height: float = 3.6) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots()


def _colors() -> list[str]:
    import matplotlib

    return list(matplotlib.rcParams["axes.prop_cycle"].by_key().get("color", ["C0", "C1", "C2"]))


def _layer_axis(ax: Any, groups: list[str]) -> None:
    """Layer names along x; turned upright when there are many (a 30-block model)."""
    ax.set_xticks(range(len(groups)), groups, rotation=90 if len(groups) > 12 else 0)
    ax.set_xlim(-0.7, len(groups) - 0.3)
    ax.set_xlabel(LAYERS_AXIS)


def _width(groups: list[str]) -> float:
    return max(8.0, min(16.0, 2.5 + 0.3 * len(groups)))


def _ok(section: Any) -> bool:
    return isinstance(section, dict) and "error" not in section


def _groups(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({r["block"] for r in rows}, key=group_key)


def drift_figure(drift: dict[str, Any], prefix: str = "") -> tuple[str, str, Any]:
    """Grouped bars: relative drift of each module type within each block."""
    groups = _groups(drift["cells"])  # every layer gets a slot, even one with nothing to draw
    cells = [c for c in drift["cells"] if c["relative"] is not None]
    modules = list(dict.fromkeys(c["module"] for c in cells))
    colors = _colors()
    fig, ax = _figure(_width(groups))
    width = 0.8 / max((sum(1 for c in cells if c["block"] == g) for g in groups), default=1)
    labelled: set[str] = set()
    for x, group in enumerate(groups):
        here = [c for c in cells if c["block"] == group]
        for j, cell in enumerate(here):
            offset = (j - (len(here) - 1) / 2) * width
            module = cell["module"]
            ax.bar(
                x + offset,
                100 * cell["relative"],
                width=width,
                color=colors[modules.index(module) % len(colors)],
                label=None if module in labelled else module,
                hatch="//" if cell["frozen"] else None,
            )
            labelled.add(module)
    _layer_axis(ax, groups)
    ax.set_ylabel("relative drift ||θ − θ₀|| / ||θ₀|| (%)\nhigher = moved more")
    what = "merged LoRA update" if drift["what"] == "lora" else "weights"
    ax.set_title(f"{prefix}How far each layer moved ({what})")
    ax.legend(title="module", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    total = drift["total"]["relative"]
    caption = (
        f"Drift of the {what} from the start of the stage to its end, per block and module type, as a share of "
        f"the starting norm; the whole model moved {100 * (total or 0):.3g}%. Hatched bars are frozen (0 by "
        f"construction). theta_0 from {drift['start']}."
    )
    return f"{prefix}Parameter drift by layer", caption, fig


def fisher_layers_figure(importance: dict[str, Any], prefix: str = "") -> tuple[str, str, Any]:
    """Two lines over the layers: mean Fisher on the kept texts and on the new task's."""
    groups = _groups(importance["kept"]["blocks"])
    fig, ax = _figure(_width(groups))
    for side, label in (("kept", "kept capability"), ("new", "new task")):
        by = {r["block"]: r["mean"] for r in importance[side]["blocks"]}
        ax.plot(range(len(groups)), [by.get(g, float("nan")) for g in groups], marker="o", label=label)
    ax.set_yscale("log")
    _layer_axis(ax, groups)
    ax.set_ylabel("mean Fisher per weight, log\n(1 = average; higher = matters more)")
    ax.set_title(f"{prefix}Which layers each task depends on")
    ax.legend(loc="best")
    caption = (
        f"Diagonal empirical Fisher at the start of the stage on {importance['texts']['kept']} kept texts and "
        f"{importance['texts']['new']} texts of the new task, each divided by its mean entry, averaged per layer. "
        "Layers high on both lines are where learning the new task is most likely to damage the old."
    )
    return f"{prefix}Parameter importance by layer", caption, fig


def fisher_scatter_figure(importance: dict[str, Any], prefix: str = "") -> tuple[str, str, Any]:
    """Log-log scatter of individual weights: Fisher on kept texts against Fisher on the new task."""
    import numpy as np

    kept, new = np.asarray(importance["sample"]["kept"]), np.asarray(importance["sample"]["new"])
    positive = np.concatenate([kept[kept > 0], new[new > 0]])
    floor = positive.min() / 10 if positive.size else 1e-8  # zeros are drawn at the floor
    fig, ax = _figure(6.0, 5.0)
    ax.scatter(np.maximum(kept, floor), np.maximum(new, floor), s=3, alpha=0.35, linewidths=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    low, high = floor, max(kept.max(initial=1.0), new.max(initial=1.0)) * 2
    ax.plot([low, high], [low, high], linestyle="--", linewidth=1, color=_colors()[1 % len(_colors())], label="y = x")
    ax.set_xlabel("Fisher on kept texts (1 = average weight, log) →  matters more to the old")
    ax.set_ylabel("Fisher on new-task texts (1 = average weight, log)\n→ the new task pulls harder")
    agree = importance["agreement"]
    spearman = "n/a" if agree["spearman"] is None else f"{agree['spearman']:.2f}"
    overlap = "n/a" if agree["top_overlap"] is None else f"{100 * agree['top_overlap']:.0f}%"
    ax.set_title(f"{prefix}Importance of individual weights (Spearman {spearman})")
    ax.legend(loc="upper left")
    caption = (
        f"{len(kept)} weights drawn at random. Up and right: weights both tasks depend on. Of the top 1% by kept "
        f"Fisher, {overlap} are also in the top 1% by new-task Fisher (1% if unrelated). Zeros are drawn at "
        f"{floor:.1e}."
    )
    return f"{prefix}Importance of individual weights", caption, fig


def interference_steps_figure(interference: dict[str, Any], prefix: str = "") -> tuple[str, str, Any]:
    """The overall gradient cosine at each measured step."""
    points = [p for p in interference["points"] if p["cosine"] is not None]
    fig, ax = _figure(7.0, 3.4)
    ax.axhline(0, color=_colors()[-1], linewidth=1, linestyle="--")
    ax.plot([p["step"] for p in points], [p["cosine"] for p in points], marker="o", label="all trainable weights")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_xlabel("training step")
    ax.set_ylabel("cos(∇ new loss, ∇ kept loss)\n< 0: the update undoes the kept")
    ax.set_title(f"{prefix}Gradient interference during training")
    ax.legend(loc="best")
    caption = (
        f"Cosine similarity between the gradients of the new-task loss and of the kept loss, each on "
        f"{interference['texts']} fixed texts, over every trainable weight. Above 0 a step on the new task also "
        "helps the kept capability; below 0 it works against it."
    )
    return f"{prefix}Gradient interference over training", caption, fig


def interference_layers_figure(interference: dict[str, Any], prefix: str = "") -> tuple[str, str, Any]:
    """Bars of the gradient cosine per layer at the last measured step."""
    last = interference["points"][-1]
    rows = sorted((r for r in last["blocks"] if r["cosine"] is not None), key=lambda r: group_key(r["block"]))
    colors = _colors()
    fig, ax = _figure(_width([r["block"] for r in rows]))
    ax.axhline(0, color=colors[-1], linewidth=1)
    ax.bar(
        range(len(rows)),
        [r["cosine"] for r in rows],
        color=[colors[0] if r["cosine"] >= 0 else colors[1 % len(colors)] for r in rows],
    )
    _layer_axis(ax, [r["block"] for r in rows])
    ax.set_ylabel("cos(∇ new loss, ∇ kept loss)\n< 0: the update undoes the kept")
    ax.set_ylim(-1.05, 1.05)
    ax.set_title(f"{prefix}Gradient interference by layer at step {last['step']}")
    caption = (
        f"The same cosine per layer at step {last['step']}: layers below 0 are where the new task's update "
        "works against the kept capability. Layers without trainable weights are left out."
    )
    return f"{prefix}Gradient interference by layer", caption, fig


def diagnostic_figures(result: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(title, caption, figure) for every diagnostic of every stage of a `forgetless run` result."""
    stages = result.get("stages", [])
    names = [s["name"] for s in result.get("config", {}).get("stages", [])]
    figures = []
    for i, stage in enumerate(stages):
        diag = stage.get("diagnostics") or {}
        prefix = f"Stage {names[i] if i < len(names) else i + 1}: " if len(stages) > 1 else ""
        if _ok(diag.get("drift")) and diag["drift"]["cells"]:
            figures.append(drift_figure(diag["drift"], prefix))
        if _ok(diag.get("importance")):
            figures.append(fisher_layers_figure(diag["importance"], prefix))
            if diag["importance"]["sample"]["kept"]:
                figures.append(fisher_scatter_figure(diag["importance"], prefix))
        interference = diag.get("interference")
        if _ok(interference) and interference["points"]:
            figures.append(interference_steps_figure(interference, prefix))
            figures.append(interference_layers_figure(interference, prefix))
    return figures
