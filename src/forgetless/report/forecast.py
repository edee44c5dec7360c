"""The forecast of a watched run, drawn and tabled: what the first checks predicted against what happened.

One panel per budgeted change (a probe in its limit's unit): every check's measured change (filled: the
checks the forecast saw; hollow: later ones), the fitted shifted power law with its band, the limit,
the step where the curve crosses it, and the forecast's interval at the end. The forecast drawn is a
re-fit of the first quarter of the checks (the same as `forgetless forecast RUN_DIR`): informational,
the guard never acts on it.
"""

from __future__ import annotations

from typing import Any

from forgetless.guard.forecast import Forecast
from forgetless.guard.forecast_watch import EARLY_SHARE, Review, review, series_of
from forgetless.report.theme import WIDTH, Theme, new_figure

UNIT_TEXT = {"points": "accuracy points lost", "percent": "perplexity rise (%)", "nats": "gold log-prob lost (nats)"}
UNIT_TEXT["kl"] = "KL to the base (nats)"
METHODS = {"power": "shifted power law", "last": "last value", "line": "straight line"}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:+.{digits}f}"


def review_rows(reviews: list[Review]) -> list[list[str]]:
    """probe, forecaster, change at the end [interval], measured, error, covered, crossing forecast and measured."""
    rows = []
    for r in reviews:
        name = r.probe if r.unit != "nats" else f"{r.probe} (nats)"
        measured_crossing = "" if r.measured_crossing is None else str(r.measured_crossing)
        for method, label in METHODS.items():
            f = r.forecasts.get(method)
            if f is None:
                continue
            interval = f"[{_fmt(f.low)}, {_fmt(f.high)}]" if f.low is not None and f.high is not None else ""
            covered = {True: "yes", False: "no", None: ""}[r.covered(method)]
            crossing = "not within the run" if f.crossing_step is None else f"{f.crossing_step:.0f}"
            rows.append(
                [
                    f"{name} (limit {r.limit:g})",
                    label,
                    f"{_fmt(f.change)} {interval}",
                    _fmt(r.measured),
                    f"{r.error(method):.2f}",
                    covered,
                    crossing,
                    measured_crossing or "never",
                ]
            )
    return rows


REVIEW_HEADER = ["budgeted change", "forecaster", "at the end [interval]", "measured", "error", "covered"]
REVIEW_HEADER += ["limit crossed at (forecast)", "(measured)"]


def mean_errors(reviews: list[Review]) -> dict[str, float]:
    """The mean absolute error of each forecaster over the reviewed changes."""
    out = {}
    for method in METHODS:
        errors = [e for r in reviews if (e := r.error(method)) is not None]
        if errors:
            out[method] = sum(errors) / len(errors)
    return out


def _shown(watch: dict[str, Any]) -> tuple[list[Forecast], str]:
    """The forecasts to draw: a re-fit of the first checks (a run stopped by the removed `stop_early` too)."""
    reviews = review(watch, EARLY_SHARE)
    forecasts = [r.forecasts["power"] for r in reviews if "power" in r.forecasts]
    return forecasts, f"fitted on the first {EARLY_SHARE:.0%} of the checks"


def forecast_figure(watch: dict[str, Any], theme: Theme) -> Any:
    """Each budgeted change's checks, the fitted curve and band, the limit and the predicted crossing."""
    forecasts, what = _shown(watch)
    forecasts = [f for f in forecasts if f.curve]
    if not forecasts:
        return None
    measured = {(s.probe, s.unit): s for s in series_of(watch.get("points", []))}
    fig, axes = new_figure(WIDTH, 0.8 + 2.4 * len(forecasts), len(forecasts), 1, sharex=True)
    for ax, f in zip(axes[:, 0], forecasts, strict=True):
        color = theme.series[0]
        steps, mids, lows, highs = zip(*f.curve, strict=True)
        ax.fill_between(steps, lows, highs, color=color, alpha=0.18, linewidth=0, label=f"band ({f.level:.0%})")
        ax.plot(steps, mids, color=color, linewidth=1.6, label="fitted curve")
        s = measured.get((f.probe, f.unit))
        if s is not None:
            seen = s.steps <= f.fitted_to
            ax.scatter(s.steps[seen], s.changes[seen], color=color, s=22, zorder=3, label="checks fitted")
            later = ~seen
            if later.any():
                ax.scatter(
                    s.steps[later], s.changes[later], facecolors="none", edgecolors=color, s=22, zorder=3,
                    label="checks after",
                )  # fmt: skip
        ax.axhline(f.limit, color=theme.budget, linestyle="--", linewidth=1.1, label=f"limit {f.limit:g}")
        ax.axvline(f.fitted_to, color=theme.muted, linestyle=":", linewidth=1.0)
        if f.low is not None and f.high is not None:
            ax.errorbar(
                [f.end_step], [f.change], yerr=[[f.change - f.low], [f.high - f.change]], color=theme.budget,
                capsize=4, marker="s", markersize=4, label="at the end (with its check's noise)",
            )  # fmt: skip
        if f.crossing_step is not None:
            ax.scatter([f.crossing_step], [f.limit], marker="x", s=70, color=theme.budget, zorder=4)
            ax.annotate(
                f"crosses at step {f.crossing_step:.0f}", (f.crossing_step, f.limit), xytext=(4, 4),
                textcoords="offset points", fontsize=8, color=theme.budget,
            )  # fmt: skip
        ax.set_ylabel(f"{f.probe}\n{UNIT_TEXT.get(f.unit, f.unit)}")
        ax.legend(loc="upper left", fontsize=7)
    axes[-1][0].set_xlabel("training step")
    fig.suptitle(f"Forecast of each budgeted change ({what})", x=0.02, ha="left")
    return fig
