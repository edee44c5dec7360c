"""`forgetless plan CONFIG` and the plan lines of `forgetless validate`: no model loaded, the packaged data counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forgetless.cli.main import app

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sst2-guard.yaml"


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, list(args), catch_exceptions=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def config(tmp_path: Path, budget: str | None) -> Path:
    (tmp_path / "data.txt").write_text("one text\n\nanother text\n")
    guard = {"budget": budget, "every": 10} if budget else {}
    data = {"suite": "quick", "stages": [{"name": "s", "data": {"source": "data.txt"}}], "guard": guard}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**data, "training": {"steps": 30}, "output_dir": "o"}))
    return path


def test_plan_of_the_example_names_each_limit_with_its_assumption() -> None:
    result = invoke("plan", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "what the budget 'lambada_ppl:10%,arc_easy_val570:5pt' can decide" in text
    assert "arc_easy_val570 (5pt): with 570 items the last of 4 checks calls a loss over with 80% power from" in text
    assert "(the data hold only 570); assuming 10% of items flip when nothing is lost, half each way" in text
    assert "lambada_ppl (10%): with 100 documents" in text and "(the data hold 5,153)" in text
    assert "80% of the 5% false-alarm rate split over 2 limits" in text


def test_plan_json_and_churn(tmp_path: Path) -> None:
    rows = json.loads(invoke("plan", str(EXAMPLE), "--json").output)["rows"]
    assert [(r["limit"], r["items"], r["available"]) for r in rows] == [
        ("lambada_ppl:10%", 100, 5153),
        ("arc_easy_val570:5pt", 570, 570),
    ]
    assert (
        rows[1]["over_level"] == pytest.approx(0.02)
        and rows[1]["test_loss"] == 8.0
        and rows[1]["within_reachable"] is True  # 570 items decide 5 points both ways
    )
    churned = json.loads(invoke("plan", str(EXAMPLE), "--json", "--churn", "0.3").output)["rows"][1]
    assert churned["within_power"] < rows[1]["within_power"] and churned["items_over"] > rows[1]["items_over"]
    assert "assuming 30% of items flip" in churned["text"]
    halved = json.loads(invoke("plan", str(EXAMPLE), "--json", "--false-alarm", "0.01").output)
    assert halved["false_alarm"] == 0.01 and halved["rows"][1]["over_level"] == pytest.approx(0.004)


def test_a_pooled_limit_sums_the_quick_suites_accuracy_items(tmp_path: Path) -> None:
    result = invoke("plan", str(config(tmp_path, "pooled:2pt,5%")), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    pooled = next(r for r in payload["rows"] if r["limit"] == "pooled:2pt")
    assert pooled["probe"] == "pooled over 2 probes" and pooled["items"] == 164  # arc_easy_val100 + triviaqa_val64
    assert pooled["available"] == 570 + 7993 and pooled["checks"] == 3
    assert payload["summary"].startswith("the last check tests over at 2% per limit")
    assert payload["within_chance"] < 1


def test_validate_prints_the_plan_as_comments_and_the_yaml_still_parses(tmp_path: Path) -> None:
    result = invoke("validate", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    head, body = result.output.split("\n", 1)
    assert head == f"{EXAMPLE} is valid: 1 stage(s), methods full"
    lines = [line for line in body.splitlines() if line.startswith("# ")]
    assert lines[0].startswith("# lambada_ppl (10%): 100 documents; over with 80% power from ")
    assert lines[1].startswith("# arc_easy_val570 (5pt): 570 items; over with 80% power from ")
    assert (
        "assuming 10% of items flip" in lines[2]
        and lines[3] == "# details, --churn and --ppl-doc-sd: forgetless plan CONFIG"
    )
    assert yaml.safe_load(body)["guard"]["budget"] == "lambada_ppl:10%,arc_easy_val570:5pt"


def test_without_a_budget_there_is_nothing_to_plan(tmp_path: Path) -> None:
    path = config(tmp_path, None)
    assert "nothing to plan" in flat(invoke("plan", str(path)).output)
    assert "# " not in invoke("validate", str(path)).output.split("\n", 2)[1]
