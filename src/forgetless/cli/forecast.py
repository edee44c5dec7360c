"""`forgetless forecast RUN_DIR`: a finished or stopped run's watch re-fit from its first checks, against the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError


def watch_files(folder: Path) -> list[tuple[str, Path]]:
    """(label, watch.json) of a run folder's stages, a ForgetGuard output_dir, a watch folder or the file itself."""
    if folder.is_file():
        return [(folder.parent.name, folder)]
    if not folder.is_dir():
        raise ForgetlessError(f"'{folder}' does not exist", "give the output_dir of a forgetless run or a ForgetGuard")
    if (folder / "watch.json").is_file():
        return [(folder.name, folder / "watch.json")]
    found = sorted(folder.glob("stage-*/watch/watch.json")) + sorted(folder.glob("forgetless-guard/watch.json"))
    if not found:
        raise ForgetlessError(
            f"no watch.json under '{folder}': the run was not watched (guard.watch: false) or this is not its folder",
            "give a forgetless run's output_dir (it holds stage-N-NAME/watch/watch.json) or a ForgetGuard's output_dir",
        )
    return [(path.parent.parent.name, path) for path in found]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ForgetlessError(f"cannot read {path}: {error}", "give the watch.json a watched run wrote") from error
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise ForgetlessError(f"{path} holds no watch history (no `points`)", "give the watch.json a watched run wrote")
    return data


def run_forecast(folder: Path, share: float, level: float) -> None:
    from forgetless.guard.forecast_watch import early_step, review
    from forgetless.report.forecast import METHODS, REVIEW_HEADER, mean_errors, review_rows
    from forgetless.report.terminal import print_table, say

    if not 0 < share < 1:
        raise ForgetlessError(f"--share {share} must be between 0 and 1", "e.g. 0.25: the first quarter of the checks")
    if not 0 < level < 1:
        raise ForgetlessError(f"--level {level} must be between 0 and 1", "e.g. 0.9 for a 90% interval")
    for label, path in watch_files(folder):
        history = _read(path)
        checks = [p["step"] for p in history["points"] if p["step"] > 0]
        upto = early_step(history["points"], share)
        reviews = review(history, share, level)
        if upto is None or not reviews:
            say((f"{label}: ", "bold"), f"{len(checks)} checks with a budget: too few to forecast from part of them")
            continue
        planned = history.get("max_steps")
        title = (
            f"{label}: forecast from the first {share:.0%} of {len(checks)} checks (to step {upto}), "
            f"against the last check (step {reviews[0].end_step}"
            + (f" of {planned} planned" if planned and planned != reviews[0].end_step else "")
            + f"); {level:.0%} intervals, changes in each limit's unit (positive = worse)"
        )
        print_table(title, REVIEW_HEADER, review_rows(reviews))
        errors = mean_errors(reviews)
        say("mean absolute error: " + ", ".join(f"{METHODS[m]} {e:.2f}" for m, e in errors.items()))
        stopped = history.get("stopped")
        if stopped:
            say(f"the guard stopped this run at step {stopped['step']} ({stopped['action']}): {stopped['why']}")
