"""One rule for relative paths: in the config file, from the file's folder; on the command line, from the cwd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.config import load_run_config
from forgetless.config.classify import load_classify_config
from forgetless.config.locations import resolve
from forgetless.errors import ConfigError
from tests.conftest import sentences

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, tiny_model: Path, tiny_suite: Path) -> Path:
    """A config folder holding its model, suite and data, all named relative to it."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "model").symlink_to(tiny_model, target_is_directory=True)
    (folder / "probes.yaml").write_text(tiny_suite.read_text())
    (folder / "data").mkdir()
    (folder / "data" / "new.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in sentences(20)))
    config = {
        "model": "model",
        "suite": "probes.yaml",
        "output_dir": "../results/first",
        "stages": [{"name": "new", "data": {"source": "data/new.jsonl", "held_out": 4}}],
        "guard": {"probes": "./probes.yaml"},
    }
    (folder / "run.yaml").write_text(yaml.safe_dump(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return folder


def test_paths_in_the_file_are_read_from_its_folder_whatever_the_cwd(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = runner.invoke(app, ["validate", str(project / "run.yaml")])
    assert result.exit_code == 0, result.output
    config, _ = load_run_config(project / "run.yaml")
    assert config.model.path == str(project / "model")
    assert config.suite == config.guard.probes == str(project / "probes.yaml")
    assert config.output_dir == tmp_path / "results" / "first"  # `..` folded
    assert config.stages[0].data.source[0].path == "data/new.jsonl"  # read from the config's folder when loaded


def test_overrides_are_read_from_the_cwd(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "elsewhere"
    monkeypatch.chdir(here)
    (here / "mine.jsonl").write_text((project / "data" / "new.jsonl").read_text())
    overrides = ["output_dir=out", "stages.0.data.source=mine.jsonl", "model=../project/model", "suite=quick"]
    config, _ = load_run_config(project / "run.yaml", overrides)
    assert config.output_dir == here / "out"
    assert config.stages[0].data.source[0].path == str(here / "mine.jsonl")
    assert config.model.path == str(project / "model") and config.suite == "quick"


def test_a_path_written_from_the_cwd_is_named_with_the_rule(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((project / "run.yaml").read_text())
    (project / "run.yaml").write_text(yaml.safe_dump({**config, "model": "project/model"}))
    with pytest.raises(ConfigError) as caught:
        load_run_config(project / "run.yaml")
    assert (
        f"model: 'project/model' is not in {project}, the config file's folder, which relative paths in the file "
        f"are read from (it is in the working directory); write it relative to {project}, or absolute"
    ) in str(caught.value)


def test_names_stay_names(tmp_path: Path) -> None:
    rows = [{"sentence": "a", "label": 0}, {"sentence": "b", "label": 1}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {"model": "minilm", "output_dir": "o", "task": {"source": "t.jsonl", "held_out": 1}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    loaded, _ = load_classify_config(tmp_path / "c.yaml")
    assert loaded.model == "minilm" and loaded.suite == "encoder" and loaded.output_dir == tmp_path / "o"
    assert resolve("HuggingFaceTB/SmolLM2-135M", "model", tmp_path) == "HuggingFaceTB/SmolLM2-135M"
    assert resolve("smollm2-135m", "model", tmp_path) == "smollm2-135m"
    assert resolve("./x", "model", tmp_path) == str(tmp_path / "x")
