"""Light and dark looks for the report's figures, and figures turned into small PNG bytes.

Every figure is drawn twice, once per theme, inside `matplotlib.rc_context(theme.rc())`, and the
page shows the one that matches the reader's color scheme. Figures are `matplotlib.figure.Figure`
objects built without pyplot (no global state, nothing to close), on the Agg canvas.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

DPI = 100  # 9.6-inch-wide figures are 960 px, the page's width: sharp, and a run's report stays well under 2 MB
WIDTH = 9.6


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    text: str
    muted: str
    grid: str
    series: tuple[str, ...]  # one color per probe, in order
    forgot: str
    kept: str
    improved: str
    budget: str  # limits and the guard's actions
    target: str
    cmap: str = "viridis"

    def verdict(self, verdict: str) -> str:
        return {"forgot": self.forgot, "improved": self.improved}.get(verdict, self.kept)

    def rc(self) -> dict[str, Any]:
        from cycler import cycler

        return {
            "figure.facecolor": self.background,
            "savefig.facecolor": self.background,
            "axes.facecolor": self.background,
            "axes.edgecolor": self.muted,
            "axes.labelcolor": self.text,
            "axes.titlecolor": self.text,
            "axes.titlesize": 11,
            "axes.labelsize": 9,
            "axes.grid": True,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": cycler(color=list(self.series)),
            "grid.color": self.grid,
            "grid.linewidth": 0.6,
            "text.color": self.text,
            "xtick.color": self.muted,
            "ytick.color": self.muted,
            "xtick.labelcolor": self.text,
            "ytick.labelcolor": self.text,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "legend.facecolor": self.background,
            "legend.edgecolor": self.grid,
            "legend.labelcolor": self.text,
            "legend.fontsize": 8,
            "legend.framealpha": 0.9,
            "font.size": 9,
            "lines.linewidth": 1.6,
            "lines.markersize": 5,
        }


LIGHT = Theme(
    name="light",
    background="#ffffff",
    text="#1f2328",
    muted="#59636e",
    grid="#d8dee4",
    series=("#0969da", "#bf8700", "#8250df", "#1b7c83", "#bc4c00", "#6e7781", "#cf222e", "#116329"),
    forgot="#cf222e",
    kept="#59636e",
    improved="#1a7f37",
    budget="#cf222e",
    target="#1a7f37",
)
DARK = Theme(
    name="dark",
    background="#0d1117",
    text="#e6edf3",
    muted="#9198a1",
    grid="#30363d",
    series=("#58a6ff", "#e3b341", "#bc8cff", "#39c5cf", "#ffa657", "#9198a1", "#ff7b72", "#56d364"),
    forgot="#ff7b72",
    kept="#9198a1",
    improved="#3fb950",
    budget="#ff7b72",
    target="#3fb950",
)
THEMES = (LIGHT, DARK)


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1, **subplots: Any) -> tuple[Any, Any]:
    """A Figure on the Agg canvas with a constrained layout, and its axes as a 2-D array."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False, **subplots)


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG bytes, with the figure's own background."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor=fig.get_facecolor(), metadata={"Software": None})
    return buffer.getvalue()
