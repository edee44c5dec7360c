"""`forgetless calibrate-kl RUN_DIR...`: what a KL value has meant in these runs, and KL limits from probe limits."""

from __future__ import annotations

from pathlib import Path


def run_calibrate_kl(
    run_dirs: list[Path], budget: str | None, out: Path | None, level: float, final_only: bool
) -> None:
    from forgetless.guard.kl_calibration import CAVEAT
    from forgetless.pipeline.kl_runs import calibrate_runs
    from forgetless.report.kl_calibration import HEADER, calibration_rows, calibration_title
    from forgetless.report.terminal import print_table, say

    calibration = calibrate_runs(run_dirs, budget, level, not final_only, out)
    if calibration.fits:
        print_table(calibration_title(calibration), HEADER, calibration_rows(calibration))
    for kl_budget in calibration.budgets:
        say(kl_budget.describe())
    for note in calibration.notes:
        say(("note: ", "yellow"), note)
    say(("This is ", "bold"), CAVEAT, ".")
    if out is not None:
        say(f"wrote {out}")
