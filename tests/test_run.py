"""`forgetless run` and `validate` end to end on the tiny model: stages, R matrix, errors, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.config import load_run_config
from forgetless.errors import ConfigError
from tests.conftest import sentences
from tests.methods.forgetting_setup import new_task

runner = CliRunner()


def write_config(tmp_path: Path, tiny_model: Path, tiny_suite: Path, **changes: object) -> Path:
    (tmp_path / "old.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in sentences(80, seed=3)))
    (tmp_path / "new.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in new_task(80, seed=4)))
    config = {
        "model": str(tiny_model),
        "suite": str(tiny_suite),
        "device": "cpu",
        "keep": {"source": "old.jsonl", "limit": 40},
        "methods": [{"name": "replay", "ratio": 0.3}],
        "training": {"steps": 6, "learning_rate": 5e-3, "batch_size": 8, "max_length": 48, "save_steps": 4},
        "stages": [
            {"name": "old", "data": {"source": "old.jsonl", "held_out": 16}},
            {"name": "new", "data": {"source": "new.jsonl", "held_out": 16}},
        ],
        "output_dir": str(tmp_path / "run"),
        **changes,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_two_stages_writes_everything(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    config = write_config(tmp_path, tiny_model, tiny_suite)
    result = runner.invoke(app, ["run", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    data = json.loads((run / "results.json").read_text())
    assert data["schema"] == "forgetless.run/1" and len(data["stages"]) == 2
    R = data["transfer"]["R"]
    assert len(R) == 3 and all(len(row) == 2 for row in R)
    assert R[1][0] > R[0][0] and R[2][1] > R[1][1]  # each stage learns its own held-out data
    assert data["transfer"]["bwt"] == pytest.approx(R[2][0] - R[1][0])
    for stage in ("stage-1-old", "stage-2-new"):
        assert (run / stage / "model" / "model.safetensors").is_file() and (run / stage / "eval.json").is_file()
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["methods"] == [{"name": "replay", "ratio": 0.3, "buffer_per_stage": 256}]
    assert "BWT" in (run / "summary.md").read_text() and "BWT" in result.output


def test_overrides_and_validate(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    config = write_config(tmp_path, tiny_model, tiny_suite)
    loaded, methods = load_run_config(config, ["training.steps=3", "methods.0.ratio=0.5"])
    assert loaded.training.steps == 3 and methods[0].config.ratio == 0.5
    result = runner.invoke(app, ["validate", str(config), "training.steps=3"])
    assert result.exit_code == 0 and "is valid" in result.output and "steps: 3" in result.output


def test_every_problem_at_once(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    config = write_config(
        tmp_path,
        tiny_model,
        tiny_suite,
        methods=[{"name": "replya"}, {"name": "replay", "ratio": 2}, {"name": "distill", "colour": 1}],
        training={"steps": 0, "learning_rat": 1},
        stages=[{"name": "a", "data": {"source": "missing.jsonl"}}],
        suite="genral",
    )
    with pytest.raises(ConfigError) as caught:
        load_run_config(config)
    text = str(caught.value)
    for expected in [
        "methods.0.name: unknown method 'replya'",
        "did you mean 'replay'",
        "methods.1.ratio: Input should be less than 1 (got 2)",
        "methods.2.colour: Extra inputs are not permitted",
        "training.steps: Input should be greater than 0 (got 0)",
        "training.learning_rat: Extra inputs are not permitted",
        "stages.0.data.source.0: path 'missing.jsonl' does not exist",
        "suite: unknown suite 'genral'",
    ]:
        assert expected in text, expected
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 2 and "problem(s)" in result.output


def test_bad_override_and_missing_file(tmp_path) -> None:  # noqa: ANN001
    from forgetless.errors import ForgetlessError

    with pytest.raises(ForgetlessError, match="does not exist"):
        load_run_config(tmp_path / "nope.yaml")
    (tmp_path / "c.yaml").write_text("stages: []\n")
    with pytest.raises(ForgetlessError, match="not key=value"):
        load_run_config(tmp_path / "c.yaml", ["training.steps"])


def test_lora_with_several_stages_is_refused(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    config = write_config(tmp_path, tiny_model, tiny_suite, methods=[{"name": "lora"}])
    with pytest.raises(ConfigError, match="lora trains one adapter"):
        load_run_config(config)


def test_lora_run_saves_an_adapter_that_loads(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    from forgetless.models import load_model
    from forgetless.pipeline.run import run

    config = write_config(
        tmp_path,
        tiny_model,
        tiny_suite,
        methods=[{"name": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]}],
        stages=[{"name": "new", "data": {"source": "new.jsonl", "held_out": 16}}],
    )
    loaded, methods = load_run_config(config)
    result = run(loaded, methods, config.parent)
    adapter = tmp_path / "run" / "stage-1-new" / "model"
    assert (adapter / "adapter_config.json").is_file() and not (adapter / "model.safetensors").exists()
    lm = load_model(str(adapter), device="cpu")
    assert lm.source == "adapter" and lm.fingerprint == result["stages"][0]["model"]["fingerprint"]
