"""`validate` reads each data source's first record and renders every template, so empty data and a missing
field are config problems, reported with the others before any model loads, not failures minutes into a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.config import load_run_config
from forgetless.config.classify import load_classify_config
from forgetless.errors import ConfigError
from tests.test_run import write_config

runner = CliRunner()


def problems(load, path: Path) -> str:  # noqa: ANN001
    with pytest.raises(ConfigError) as caught:
        load(path)
    return str(caught.value)


def test_empty_data_and_a_missing_field_are_reported_with_the_rest(
    tiny_model: Path, tiny_suite: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "bodies.jsonl").write_text("".join(json.dumps({"body": f"b{i}", "id": i}) + "\n" for i in range(5)))
    config = write_config(
        tmp_path,
        tiny_model,
        tiny_suite,
        keep={"source": "bodies.jsonl"},
        training={"steps": 0},
        stages=[
            {"name": "a", "data": {"source": "empty.jsonl"}},
            {"name": "b", "data": {"source": ["old.jsonl", "bodies.jsonl"], "text": "{{ text }}"}},
        ],
    )
    text = problems(load_run_config, config)
    assert text.startswith("4 problem(s)")  # each data problem beside the config's own
    for expected in [
        "training.steps: Input should be greater than 0 (got 0)",
        "stages.0.data.source.0: 'empty.jsonl' has no records; point it at data with at least one",
        "stages.1.data.text: first record of 'bodies.jsonl': template '{{ text }}' failed: 'text' is undefined; "
        "the item's fields are: body, id",
        "keep.text: first record of 'bodies.jsonl': template '{{ text }}' failed: 'text' is undefined",
    ]:
        assert expected in text, expected
    assert "stages.1.data.source.0" not in text  # old.jsonl has `text`
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 2 and "4 problem(s)" in result.output
    assert "'empty.jsonl' has no records" in " ".join(result.output.split())


def test_chat_templates_and_held_out_are_checked(tiny_model: Path, tiny_suite: Path, tmp_path: Path) -> None:
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps({"prompt": "p", "answer": "a"}) + "\n" for _ in range(3)))
    stages = [
        {"name": "chat", "data": {"source": "chat.jsonl", "format": "chat"}},
        {"name": "small", "data": {"source": "old.jsonl", "limit": 10, "held_out": 10}},
    ]
    text = problems(load_run_config, write_config(tmp_path, tiny_model, tiny_suite, stages=stages))
    assert "stages.0.data.response: first record of 'chat.jsonl': template '{{ response }}' failed" in text
    assert "stages.0.data.prompt" not in text
    assert "stages.1.data.held_out: 10 leaves no training examples out of 10 record(s); lower held_out" in text


def test_a_suite_file_of_the_users_is_rendered_too(tiny_model: Path, mc_data: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    probe = {"name": "mc", "kind": "choice", "source": str(mc_data), "context": "{{ question }}"}
    probe |= {"choices": "{{ choices.txt }}", "gold": "0"}
    suite.write_text(yaml.safe_dump({"name": "mine", "probes": [probe]}))
    text = problems(load_run_config, write_config(tmp_path, tiny_model, suite))
    assert f"suite probe 'mc'.choices: first record of '{mc_data}': template '{{{{ choices.txt }}}}' failed" in text


def test_classify_task_without_the_templated_field(tmp_path: Path) -> None:
    (tmp_path / "task.jsonl").write_text("".join(json.dumps({"review": "ok", "label": 1}) + "\n" for _ in range(4)))
    config = tmp_path / "classify.yaml"
    config.write_text(yaml.safe_dump({"task": {"source": "task.jsonl", "held_out": 2}}))
    text = problems(load_classify_config, config)
    assert "task.text: first record of 'task.jsonl': template '{{ sentence }}' failed: 'sentence' is undefined" in text
    assert "the item's fields are: label, review" in text
