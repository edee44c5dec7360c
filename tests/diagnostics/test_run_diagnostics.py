"""`forgetless run` on the tiny setup writes each stage's diagnostics in results.json, and the figures draw."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.report.diagnostic_plots import diagnostic_figures
from tests.conftest import sentences
from tests.methods.forgetting_setup import new_task

runner = CliRunner()


def write_config(tmp_path: Path, tiny_model: Path, tiny_suite: Path, **changes: object) -> Path:
    (tmp_path / "old.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in sentences(40, seed=3)))
    (tmp_path / "new.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in new_task(40, seed=4)))
    config = {
        "model": str(tiny_model),
        "suite": str(tiny_suite),
        "device": "cpu",
        "keep": {"source": "old.jsonl", "limit": 20},
        "training": {"steps": 3, "learning_rate": 5e-3, "batch_size": 8, "max_length": 48, "save_steps": 3},
        "stages": [{"name": "old", "data": {"source": "old.jsonl"}}, {"name": "new", "data": {"source": "new.jsonl"}}],
        "guard": {"watch": False},
        "diagnostics": {"texts": 4, "batch": 4, "sample": 300},
        "output_dir": str(tmp_path / "run"),
        **changes,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_writes_diagnostics_for_every_stage(tiny_model: Path, tiny_suite: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(write_config(tmp_path, tiny_model, tiny_suite))], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    first, second = (stage["diagnostics"] for stage in data["stages"])
    for diag in (first, second):
        assert set(diag) == {"drift", "importance", "interference"}
        assert all("error" not in section for section in diag.values()), diag
        assert diag["drift"]["total"]["drift"] > 0 and diag["drift"]["memory_mib"] == 0.0
        steps = [p["step"] for p in diag["interference"]["points"]]
        assert steps[0] == 0 and steps[-1] == 3  # auto: the ends, and between them as the overhead allows
    # theta_0 read back from disk: the model's folder, then the first stage's saved model
    assert first["drift"]["start"] == f"files: read back from {tiny_model}, no copy kept"
    assert str(tmp_path / "run" / "stage-1-old" / "model") in second["drift"]["start"]
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert resolved["diagnostics"]["every"] == "auto"
    figures = diagnostic_figures(data)
    assert len(figures) == 10 and figures[0][0] == "Stage old: Parameter drift by layer"


def test_without_keep_the_kept_texts_are_the_suites_perplexity_texts(
    tiny_model: Path, tiny_suite: Path, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        tiny_model,
        tiny_suite,
        keep=None,
        stages=[{"name": "new", "data": {"source": "new.jsonl"}}],
        diagnostics={"drift": False, "interference": False, "texts": 3, "sample": 100},
    )
    result = runner.invoke(app, ["run", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    diag = json.loads((tmp_path / "run" / "results.json").read_text())["stages"][0]["diagnostics"]
    assert set(diag) == {"importance"} and diag["importance"]["texts"] == {"kept": 3, "new": 3}
