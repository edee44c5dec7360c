"""BWT, forgetting and FWT exist only for two stages or more: a one-stage run writes null and prints nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.pipeline.run import transfer_metrics
from tests.test_run import write_config

runner = CliRunner()


def test_transfer_metrics_need_two_stages_with_held_out_data() -> None:
    assert transfer_metrics([[-5.0], [-4.0]]) is None  # one stage: BWT and FWT would be NaN
    assert transfer_metrics([[-5.0], [-4.0], [-4.5]]) is None  # two stages, one without held-out data
    assert transfer_metrics([]) is None
    two = transfer_metrics([[-5.0, -6.0], [-4.0, -5.5], [-4.5, -3.0]])
    assert two is not None
    assert two["bwt"] == pytest.approx(-0.5) and two["fwt"] == pytest.approx(0.5)
    assert two["forgetting"] == pytest.approx(0.5) and two["average"] == pytest.approx(-3.75)


def test_one_stage_run_writes_valid_json_and_prints_no_bwt(tiny_model: Path, tiny_suite: Path, tmp_path: Path) -> None:
    stages = [{"name": "new", "data": {"source": "new.jsonl", "held_out": 16}}]
    config = write_config(tmp_path, tiny_model, tiny_suite, stages=stages, training={"steps": 2, "max_length": 32})
    result = runner.invoke(app, ["run", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "run" / "results.json").read_text()
    assert json.loads(text)["transfer"] is None and '"bwt"' not in text and '"fwt"' not in text
    assert "BWT" not in result.output and "nan" not in result.output
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "BWT" not in summary and "## Stages" not in summary
    assert "stage_new" in summary  # the stage's held-out data is still scored, in the final audit
