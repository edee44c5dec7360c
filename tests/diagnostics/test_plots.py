"""The diagnostics' figures: which are drawn, labelled axes, and one artist per bar, line or point."""

from __future__ import annotations

import io

import pytest

from forgetless.report.diagnostic_plots import diagnostic_figures

MODULES = {"embed": ["embed"], "0": ["q_proj", "up_proj", "norm"], "1": ["q_proj", "up_proj", "norm"]}
MODULES |= {"norm": ["norm"], "head": ["head"]}


def drift() -> dict:
    cells = [
        {"block": b, "module": m, "drift": 0.1, "relative": 0.01 * (i + 1), "rms": 0.0, "params": 4, "frozen": b == "0"}
        for i, (b, ms) in enumerate(MODULES.items())
        for m in ms
    ]
    cells[-1]["relative"] = None  # a quantized head: no norm to compare with
    blocks = [{"block": b, "drift": 0.1, "relative": 0.01, "params": 4, "frozen": False} for b in MODULES]
    total = {"drift": 1.0, "relative": 0.02, "rms": 0.0, "params": 40, "frozen": False}
    return {"what": "weights", "start": "snapshot", "total": total, "blocks": blocks, "cells": cells}


def importance() -> dict:
    side = {"scale": 1e-3, "blocks": [{"block": b, "mean": 0.5 + i, "params": 4} for i, b in enumerate(MODULES)]}
    sample = {"kept": [0.0, 0.1, 1.0, 10.0, 2.0], "new": [0.5, 0.0, 3.0, 4.0, 1.0]}
    return {"texts": {"kept": 4, "new": 4}, "kept": side, "new": side, "sample": sample,
            "agreement": {"spearman": 0.5, "top_overlap": 1.0}}  # fmt: skip


def interference() -> dict:
    def point(step: int, cosine: float) -> dict:
        blocks = [{"block": b, "cosine": cosine if b != "embed" else None} for b in MODULES]
        return {"step": step, "cosine": cosine, "blocks": blocks, "modules": [], "seconds": 0.1}

    return {"texts": 4, "points": [point(0, 0.3), point(5, -0.2), point(10, -0.4)], "seconds": 0.3}


def result(stages: int = 1, **diagnostics: object) -> dict:
    diag = {"drift": drift(), "importance": importance(), "interference": interference(), **diagnostics}
    names = [{"name": f"s{i}"} for i in range(stages)]
    return {"config": {"stages": names}, "stages": [{"diagnostics": diag} for _ in range(stages)]}


def test_five_labelled_figures_with_one_artist_per_value() -> None:
    figures = diagnostic_figures(result())
    titles = [t for t, _, _ in figures]
    assert titles == [
        "Parameter drift by layer",
        "Parameter importance by layer",
        "Importance of individual weights",
        "Gradient interference over training",
        "Gradient interference by layer",
    ]
    axes = {title: fig.axes[0] for title, _, fig in figures}
    for title, caption, fig in figures:
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() and caption, title
        fig.savefig(io.BytesIO(), format="png")  # draws on the Agg canvas
    assert len(axes["Parameter drift by layer"].patches) == 8  # 9 cells, one without a relative drift
    assert [t.get_text() for t in axes["Parameter drift by layer"].get_xticklabels()] == list(MODULES)
    legend = axes["Parameter drift by layer"].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["embed", "q_proj", "up_proj", "norm"]
    lines = axes["Parameter importance by layer"].get_lines()
    assert len(lines) == 2 and list(lines[0].get_ydata()) == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert axes["Parameter importance by layer"].get_yscale() == "log"
    scatter = axes["Importance of individual weights"]
    assert len(scatter.collections) == 1 and len(scatter.collections[0].get_offsets()) == 5
    assert scatter.get_xscale() == scatter.get_yscale() == "log"
    steps = axes["Gradient interference over training"].get_lines()
    assert len(steps) == 2 and list(steps[1].get_xdata()) == [0, 5, 10]  # the zero line, then the cosines
    assert len(axes["Gradient interference by layer"].patches) == 4  # the embeddings have no cosine
    assert "step 10" in axes["Gradient interference by layer"].get_title()


def test_figures_per_stage_and_missing_or_failed_diagnostics_skipped() -> None:
    figures = diagnostic_figures(result(stages=2))
    assert len(figures) == 10 and figures[5][0].startswith("Stage s1: ")
    partial = diagnostic_figures(result(importance={"error": "no kept texts"}, interference=None))
    assert [t for t, _, _ in partial] == ["Parameter drift by layer"]
    assert diagnostic_figures({"config": {"stages": [{"name": "a"}]}, "stages": [{}]}) == []


@pytest.mark.parametrize("what,word", [("lora", "merged LoRA update"), ("weights", "weights")])
def test_drift_title_says_what_moved(what: str, word: str) -> None:
    title = diagnostic_figures(result(drift={**drift(), "what": what}))[0][2].axes[0].get_title()
    assert word in title
