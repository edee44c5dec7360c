"""`forgetless classify` and `forgetless eval` on the tiny BERT, end to end, and config errors before any load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.config.classify import load_classify_config
from forgetless.errors import ConfigError
from forgetless.models import load_model
from tests.encoders.conftest import write_jsonl
from tests.encoders.encoder_setup import KEEP, KEPT_HELD, NEW_TRAIN, joint_task
from tests.encoders.test_probes import pairs

runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def setup(tmp_path: Path, encoder_base: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)  # output_dir is relative, as in the examples
    suite = tmp_path / "suite.yaml"
    kept = write_jsonl(tmp_path / "joint.jsonl", KEPT_HELD[:120])
    similar = write_jsonl(tmp_path / "pairs.jsonl", pairs(60))
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-encoder",
                "probes": [
                    {"name": "joint", "kind": "linear_probe", "source": str(kept), "pooling": "cls", "c": 1.0},
                    {"name": "similarity", "kind": "embedding", "source": str(similar), "positive": 1.0},
                ],
            }
        )
    )
    task = write_jsonl(tmp_path / "motion.jsonl", NEW_TRAIN[:200])
    keep = write_jsonl(tmp_path / "keep.jsonl", KEEP)
    config = {
        "model": str(encoder_base),
        "suite": str(suite),
        "output_dir": "out",
        "task": {"name": "motion", "source": "motion.jsonl", "held_out": 60},
        "keep": {"source": "keep.jsonl", "label": None},
        "methods": [{"name": "l2sp", "alpha": 0.1}],
        "training": {"steps": 30, "learning_rate": 5e-3, "batch_size": 16, "max_length": 32, "seed": 1},
        "device": "cpu",
    }
    path = tmp_path / "classify.yaml"
    path.write_text(yaml.safe_dump(config))
    return {"config": path, "out": tmp_path / "out", "task": task, "keep": keep}


def test_classify_tunes_a_head_and_audits_the_encoder(setup: dict[str, Path]) -> None:
    result = invoke("classify", str(setup["config"]))
    assert result.exit_code == 0, result.output
    out = setup["out"]
    audit = json.loads((out / "audit.json").read_text())
    assert audit["schema"] == "forgetless.audit/1"
    assert audit["task"] == {"name": "motion", "num_labels": 2, "train": 140, "held_out": 60}
    assert [m["name"] for m in audit["config"]["methods"]] == ["l2sp"] and audit["training"]["loss_curve"]
    target = next(c for c in audit["comparisons"] if c["role"] == "target")
    assert target["probe"] == "motion" and target["metric"] == "acc" and target["after"] > 0.9
    assert target["before"] < 0.8 and target["verdict"] == "improved"  # a fresh head (seed 1): far from perfect
    metrics = {(c["probe"], c["metric"]) for c in audit["comparisons"]}
    assert {("joint", "acc"), ("similarity", "spearman"), ("similarity", "recall_at_1")} <= metrics
    assert "target motion: acc" in audit["summary"]["headline"]
    assert (out / "report.html").is_file() and "| motion (target) | acc |" in (out / "summary.md").read_text()
    tuned = load_model(str(out / "model"), device="cpu")  # a plain folder with its head: audit and eval open it
    assert tuned.details["num_labels"] == 2
    assert "motion" in result.output and "wrote" in result.output


def test_classify_with_lora_saves_a_merged_model(setup: dict[str, Path]) -> None:
    result = invoke("classify", str(setup["config"]), "methods=[{name: lora, r: 2}]", "training.steps=5")
    assert result.exit_code == 0, result.output
    assert not (setup["out"] / "model" / "adapter_config.json").exists()
    assert type(load_model(str(setup["out"] / "model"), device="cpu").model).__name__ == "BertForSequenceClassification"


def test_labels_that_do_not_fit_the_head_stop_before_the_model_loads(setup: dict[str, Path]) -> None:
    write_jsonl(setup["task"], joint_task(100, seed=1))  # labels 0..7
    result = runner.invoke(app, ["classify", str(setup["config"]), "task.num_labels=2"])
    assert result.exit_code == 2
    assert "task data: labels 2 (" in result.output and "do not fit a head of 2 labels" in result.output
    assert not (setup["out"] / "config.yaml").exists() and not (setup["out"] / "model").exists()


def test_config_problems_are_reported_at_once(setup: dict[str, Path]) -> None:
    overrides = ["methods=[{name: replay}, {name: ewc}]", "keep=null", "task.num_labels=1", "suite=nope"]
    with pytest.raises(ConfigError) as caught:
        load_classify_config(setup["config"], overrides)
    text = str(caught.value)
    assert "task.num_labels: Input should be greater than or equal to 2" in text
    assert "methods.0.name: 'replay' trains a language model on text and cannot train a classifier" in text
    assert "methods.1 (ewc): ewc estimates its Fisher on `keep`" in text
    assert "suite: unknown suite 'nope'" in text


def test_ewc_empirical_needs_labelled_keep_data(setup: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="fisher 'empirical' needs labels in keep data"):
        load_classify_config(setup["config"], ["methods=[{name: ewc}]"])
    config, methods = load_classify_config(setup["config"], ["methods=[{name: ewc, fisher: sampled}]"])
    assert methods[0].config.fisher == "sampled" and config.keep.label is None


def test_eval_scores_an_encoder_on_an_encoder_suite(setup: dict[str, Path], encoder_base: Path, tmp_path: Path) -> None:
    suite = yaml.safe_load(setup["config"].read_text())["suite"]
    result = invoke(
        "eval", "--model", str(encoder_base), "--suite", suite, "--out", str(tmp_path / "e"), "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert [p["kind"] for p in data["probes"]] == ["linear_probe", "embedding"]
    assert data["probes"][0]["metrics"]["acc"]["value"] > 0.95
