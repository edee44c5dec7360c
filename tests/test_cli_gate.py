"""`forgetless audit --budget` as a CI gate: its exit codes on the tiny models (cli/exit_codes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetless.cli.exit_codes import BAD_INPUT, INCONCLUSIVE, OK, OVER_BUDGET
from forgetless.cli.main import app

runner = CliRunner()


def audit(base: Path, tuned: Path, suite: Path, out: Path, *flags: str):  # noqa: ANN201
    args = ["audit", str(base), str(tuned), "--suite", str(suite), "--out", str(out), "--device", "cpu", *flags]
    return runner.invoke(app, args, catch_exceptions=False)


def test_over_budget_exits_3_and_inconclusive_passes_unless_asked(tiny_model, tiny_tuned, tiny_suite, tmp_path) -> None:  # noqa: ANN001, E501
    # The perturbed model's held-out perplexity rises ~367% (tests/test_api.py): over a 5% limit beyond noise.
    over = audit(tiny_model, tiny_tuned, tiny_suite, tmp_path / "over", "--budget", "docs_ppl:5%,mc:1pt")
    assert over.exit_code == OVER_BUDGET == 3, over.output
    assert "exit 3 (fail: over budget)" in over.output
    written = json.loads((tmp_path / "over" / "audit.json").read_text())  # the files are there for the CI's artifacts
    assert written["guard"]["status"] == "over"

    # mc drops 4.2 points on 24 items: past 1 point but inside the noise, so inconclusive, not over.
    unclear = audit(tiny_model, tiny_tuned, tiny_suite, tmp_path / "mc", "--budget", "mc:1pt")
    assert unclear.exit_code == OK, unclear.output
    said = " ".join(unclear.output.split())
    assert "not over budget mc:1pt beyond doubt" in said and "exit 0 (pass: inconclusive, not over budget" in said
    assert "within budget mc" not in said
    assert json.loads((tmp_path / "mc" / "audit.json").read_text())["guard"]["status"] == "inconclusive"
    strict = audit(
        tiny_model, tiny_tuned, tiny_suite, tmp_path / "mc", "--budget", "mc:1pt", "--fail-on", "inconclusive"
    )
    assert strict.exit_code == INCONCLUSIVE == 4, strict.output
    assert "exit 4 (fail: inconclusive" in strict.output


def test_within_budget_exits_0_even_when_inconclusive_fails(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    # The same weights: every document's log-likelihood is unchanged, so 5% is proven within.
    result = audit(
        tiny_model, tiny_model, tiny_suite, tmp_path / "same", "--budget", "docs_ppl:5%", "--fail-on", "inconclusive"
    )
    assert result.exit_code == OK, result.output
    checks = json.loads((tmp_path / "same" / "audit.json").read_text())["guard"]["final"]
    assert [(c["probe"], c["status"]) for c in checks] == [("docs_ppl", "within")]
    assert "exit 0 (pass: within budget)" in result.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--fail-on", "inconclusive"], "--fail-on inconclusive needs a budget"),
        (["--budget", "2pt", "--fail-on", "sometimes"], "--fail-on 'sometimes' is not over or inconclusive"),
        (["--budget", "nothere:2pt"], "no watched probe is named 'nothere'"),
    ],
)
def test_bad_input_keeps_exit_2(flags, message, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    # Checked before any model loads: the model paths need not exist.
    result = audit(tmp_path / "no-base", tmp_path / "no-tuned", tiny_suite, tmp_path / "out", *flags)
    assert result.exit_code == BAD_INPUT == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_help_documents_the_exit_codes() -> None:
    text = " ".join(runner.invoke(app, ["audit", "--help"]).output.split())
    for code in ("0 within budget, or inconclusive without --fail-on", "2 bad input", "3 over budget beyond noise"):
        assert code in text, code
    assert "4 with --fail-on inconclusive" in text
    for command in ("run", "repair"):  # the same codes, from the returned model's status
        text = " ".join(runner.invoke(app, [command, "--help"]).output.split())
        assert "3 over budget beyond noise" in text and "--fail-on" in text, command
