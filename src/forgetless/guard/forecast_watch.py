"""Forecasts of a watch's checks: live at each check, and after the fact against what happened.

A watch point (watch.json `points[]`) holds each budgeted check: the change in its limit's unit and
its interval at the check's level. `series_of` turns the points into one series per budgeted
(probe, unit); `forecast_checks` forecasts each at the run's last step (guard.forecast). `review`
re-fits a finished or stopped run from its first checks only and sets the forecast, and the two
naive forecasters, beside what the checks measured later: `forgetless forecast RUN_DIR` prints it
and the report draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from forgetless.guard.forecast import (
    DRAWS,
    LEVEL,
    MIN_CHECKS,
    Forecast,
    Series,
    fit_power,
    last_value,
    standard_error,
    straight_line,
)

EARLY_SHARE = 0.25  # the share of the checks a review fits on


def series_of(points: list[dict[str, Any]], upto: int | None = None) -> list[Series]:
    """One series per budgeted (probe, unit) from the checks at steps 0 < step <= `upto` (all when None)."""
    rows: dict[tuple[str, str], list[tuple[int, float, float, float, float]]] = {}
    for point in sorted(points, key=lambda p: p["step"]):
        if point["step"] <= 0 or (upto is not None and point["step"] > upto):
            continue
        for check in point.get("checks", []):
            if check.get("change") is None or not math.isfinite(check["change"]):
                continue
            se = standard_error(check.get("low"), check.get("high"), check.get("level"))
            share = point.get("items_share", 1.0)
            rows.setdefault((check["probe"], check["unit"]), []).append(
                (point["step"], check["change"], se, share, check["limit"])
            )
    out = []
    for (probe, unit), found in rows.items():
        steps, changes, ses, shares, limits = (np.array(col, dtype=float) for col in zip(*found, strict=True))
        out.append(Series(probe, unit, float(limits[-1]), steps, changes, ses, shares))
    return out


def forecast_checks(
    points: list[dict[str, Any]], end_step: int, level: float = LEVEL, draws: int = DRAWS, upto: int | None = None
) -> list[Forecast]:
    """The shifted power law's forecast at `end_step` of every budgeted change with enough checks."""
    out = []
    for series in series_of(points, upto):
        forecast = fit_power(series, end_step, level, draws)
        if forecast is not None:
            out.append(forecast)
    return out


def summary(forecast: Forecast) -> dict[str, Any]:
    """What each watch point keeps of a live forecast (the full curve is kept for the latest only)."""
    keep = ("probe", "unit", "limit", "checks", "end_step", "change", "low", "high", "level", "crossing_step")
    data = forecast.to_dict()
    return {k: data[k] for k in keep} | {"within_until": forecast.within_until, "p_cross": forecast.p_cross}


@dataclass
class Review:
    """A forecast made from the first checks of a run, and what the checks measured afterwards."""

    probe: str
    unit: str
    limit: float
    fitted_to: int  # the last step the forecast saw
    end_step: int  # the last step checked: where the forecast is compared with the measurement
    measured: float  # the change the check at end_step measured
    measured_crossing: int | None  # the first checked step whose change was past the limit
    forecasts: dict[str, Forecast]  # power | last | line

    def error(self, method: str) -> float | None:
        f = self.forecasts.get(method)
        return None if f is None else abs(f.change - self.measured)

    def covered(self, method: str) -> bool | None:
        f = self.forecasts.get(method)
        if f is None or f.low is None or f.high is None:
            return None
        return f.low <= self.measured <= f.high


def early_step(points: list[dict[str, Any]], share: float) -> int | None:
    """The step of the check that ends the first `share` of the checks (at least MIN_CHECKS of them)."""
    steps = sorted(p["step"] for p in points if p["step"] > 0)
    if len(steps) < MIN_CHECKS + 1:  # a forecast needs its checks and at least one later check to judge it by
        return None
    count = min(len(steps) - 1, max(MIN_CHECKS, math.ceil(share * len(steps))))
    return steps[count - 1]


def review(
    history: dict[str, Any], share: float = EARLY_SHARE, level: float = LEVEL, draws: int = DRAWS
) -> list[Review]:
    """Every budgeted change forecast from the first `share` of the checks, against the last check's measure."""
    points = history.get("points", [])
    upto = early_step(points, share)
    if upto is None:
        return []
    out = []
    full = {(s.probe, s.unit): s for s in series_of(points)}
    for early in series_of(points, upto):
        later = full[(early.probe, early.unit)]
        end = int(later.steps.max())
        if end <= upto:
            continue
        past = later.steps[later.changes > later.limit]
        fits = {
            "power": fit_power(early, end, level, draws),
            "last": last_value(early, end, level),
            "line": straight_line(early, end, level),
        }
        measured = float(later.changes[int(np.argmax(later.steps))])
        crossing = int(past.min()) if len(past) else None
        forecasts = {k: v for k, v in fits.items() if v is not None}
        out.append(Review(early.probe, early.unit, early.limit, upto, end, measured, crossing, forecasts))
    return out
