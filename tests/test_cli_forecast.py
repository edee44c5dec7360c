"""`forgetless forecast RUN_DIR` on a saved watch.json, and the report's forecast figure."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.report.forecast import forecast_figure
from forgetless.report.theme import LIGHT

runner = CliRunner()


def change(step: int) -> float:
    return 0.3 * ((step + 10) ** 0.7 - 10**0.7)  # perplexity rise in %, crosses a 5% limit at step 71


def write_watch(folder: Path, steps: list[int], stopped: dict | None = None) -> Path:
    points = [{"step": 0, "checks": [], "values": {}, "seconds": 0.0}]
    for step in steps:
        c = change(step)
        check = {"probe": "lambada", "metric": "perplexity", "change": c, "limit": 5.0, "unit": "percent"}
        check |= {"status": "over" if c - 0.5 > 5 else "inconclusive", "low": c - 0.5, "high": c + 0.5, "level": 0.99}
        points.append({"step": step, "checks": [check], "values": {}, "items_share": 1.0, "seconds": 1.0})
    history = {"points": points, "events": [], "stopped": stopped, "max_steps": 200, "forecast": None}
    path = folder / "stage-1-sst2" / "watch" / "watch.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(history))
    return path


def test_forecast_of_a_finished_run(tmp_path) -> None:  # noqa: ANN001
    write_watch(tmp_path, list(range(10, 201, 10)))
    result = runner.invoke(app, ["forecast", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "stage-1-sst2: forecast from the first 25% of 20 checks (to step 50)" in text
    assert "against the last check (step 200" in text
    for forecaster in ("shifted power law", "last value", "straight line"):
        assert forecaster in text
    measured = f"{change(200):+.2f}"
    assert measured in text and "mean absolute error:" in text
    # The limit was first measured past at step 80 (71 on the curve, checks every 10 steps).
    assert "80" in text


def test_share_changes_the_checks_fitted(tmp_path) -> None:  # noqa: ANN001
    path = write_watch(tmp_path, list(range(10, 201, 10)))
    result = runner.invoke(app, ["forecast", str(path), "--share", "0.5"], catch_exceptions=False)
    assert "first 50% of 20 checks (to step 100)" in " ".join(result.output.split())


def test_bad_inputs_are_clear_errors(tmp_path) -> None:  # noqa: ANN001
    result = runner.invoke(app, ["forecast", str(tmp_path)])
    assert result.exit_code == 2 and "no watch.json under" in result.output
    write_watch(tmp_path, [10, 20])
    result = runner.invoke(app, ["forecast", str(tmp_path)])
    assert result.exit_code == 0 and "too few to forecast" in " ".join(result.output.split())
    result = runner.invoke(app, ["forecast", str(tmp_path), "--share", "1.5"])
    assert result.exit_code == 2 and "--share 1.5 must be between 0 and 1" in result.output


def test_report_figure_draws_the_early_forecast(tmp_path) -> None:  # noqa: ANN001
    matplotlib.use("Agg")
    watch = json.loads(write_watch(tmp_path, list(range(10, 201, 10))).read_text())
    fig = forecast_figure(watch, LIGHT)
    (ax,) = fig.axes
    labels = ax.get_legend_handles_labels()[1]
    assert {"fitted curve", "checks fitted", "checks after", "limit 5"} <= set(labels)
    assert any("crosses at step" in t.get_text() for t in ax.texts)
    assert "first 25% of the checks" in fig._suptitle.get_text()
    assert forecast_figure({"points": watch["points"][:3]}, LIGHT) is None  # too few checks: no figure
