"""The KL calibration (guard.kl_calibration) as a terminal table: one row per probe's fit."""

from __future__ import annotations

from forgetless.guard.budget import UNIT_TEXT
from forgetless.guard.kl_calibration import KLCalibration

HEADER = ["probe", "unit", "change per nat of KL", "interval", "R^2", "runs", "points", "largest KL"]


def calibration_title(calibration: KLCalibration) -> str:
    points = "each run's end and its checks during training" if calibration.within_run else "each run's end"
    return (
        f"change = slope x KL across {len(calibration.runs)} runs ({points}); {calibration.level:.0%} intervals over "
        "runs; changes positive = worse"
    )


def calibration_rows(calibration: KLCalibration) -> list[list[str]]:
    rows = []
    for f in calibration.fits:
        unit = UNIT_TEXT[f.unit].strip() or f.unit
        r2 = "" if f.r2 is None else f"{f.r2:.2f}"
        interval = f"[{f.low:.3g}, {f.high:.3g}]"
        rows.append([f.probe, unit, f"{f.slope:.3g}", interval, r2, str(f.runs), str(f.points), f"{f.max_kl:.3g}"])
    return rows
