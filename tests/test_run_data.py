"""`forgetless run` on TRL's chat data and streamed data, end to end on the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pytest
import yaml
from transformers import AutoTokenizer
from typer.testing import CliRunner

from forgetless.cli.main import app
from tests.conftest import sentences

runner = CliRunner()
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


@pytest.fixture(autouse=True)
def no_shutdown_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """datasets sleeps 5 s when a read of several Parquet shards stops early (see tests/train/test_streaming.py)."""
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)


def chat_model(tiny_model: Path, folder: Path) -> Path:
    """The tiny model with a chat template."""
    shutil.copytree(tiny_model, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    return folder


def shards(folder: Path, texts: list[str], parts: int = 2) -> Path:
    (folder / "data").mkdir(parents=True)
    size = len(texts) // parts
    for i in range(parts):
        part = datasets.Dataset.from_dict({"text": texts[i * size : (i + 1) * size]})
        part.to_parquet(folder / "data" / f"train-{i:05d}-of-{parts:05d}.parquet")
    return folder


def test_run_on_messages_and_streams(tiny_model, text_data, tmp_path) -> None:  # noqa: ANN001
    model = chat_model(tiny_model, tmp_path / "chat-model")
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: tiny\nprobes:\n  - {{name: docs_ppl, kind: perplexity, source: {text_data}}}\n")
    conversations = [
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": f"What does {s.split()[0].lower()} see?"},
                {"role": "assistant", "content": s},
                {"role": "user", "content": "And then?"},
                {"role": "assistant", "content": t},
            ]
        }
        for s, t in zip(sentences(40, seed=1), sentences(40, seed=2), strict=True)
    ]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(c) + "\n" for c in conversations))
    shards(tmp_path / "kept", sentences(400, seed=3))
    shards(tmp_path / "code", [f"def f{i}(a, b):\n    return a + {i}\n" for i in range(400)])
    config = {
        "model": str(model),
        "suite": str(suite),
        "device": "cpu",
        "keep": {"source": "kept", "streaming": True},
        "methods": [{"name": "replay", "ratio": 0.25}],
        "training": {"steps": 2, "learning_rate": 1e-3, "batch_size": 4, "max_length": 64, "save_steps": 2},
        "guard": {"watch": False},
        "diagnostics": {"drift": False, "importance": False, "interference": False},
        "stages": [
            {"name": "chat", "data": {"source": "chat.jsonl", "format": "messages", "held_out": 8}},
            {"name": "code", "data": {"source": "code", "streaming": True, "format": "pack", "limit": 200}},
        ],
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    validated = runner.invoke(app, ["validate", str(path)])
    assert validated.exit_code == 0, validated.output
    result = runner.invoke(app, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [len(s["training"]["loss_curve"]) for s in data["stages"]] == [2, 2]
    assert data["config"]["stages"][1]["data"]["streaming"] is True
    assert {p["name"] for p in data["stages"][1]["probes"]} >= {"stage_chat", "docs_ppl"}
    # The chat stage's held-out conversations are rendered through the template, as the stage's probe scores them.
    held = (tmp_path / "run" / "data" / "chat_heldout.jsonl").read_text().splitlines()
    assert len(held) == 8 and json.loads(held[0])["text"].startswith("<s>system: Answer briefly.</s>")
