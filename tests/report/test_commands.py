"""Every command writes report.html beside its JSON and says so: eval, audit and repair on the tiny models."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from forgetless.cli.main import app

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps long lines


def test_eval_and_audit_write_report_html(tiny_model, tiny_tuned, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    output = invoke(
        "eval", "--model", str(tiny_model), "--suite", str(tiny_suite), "--out", str(tmp_path / "e"), "--device", "cpu"
    )
    assert f"{tmp_path / 'e' / 'report.html'}" in output
    page = (tmp_path / "e" / "report.html").read_text()
    assert 'id="verdict"' in page and len(re.findall(r"<img ", page)) == 1
    args = ["audit", str(tiny_model), str(tiny_tuned), "--suite", str(tiny_suite), "--out", str(tmp_path / "a")]
    output = invoke(*args, "--device", "cpu")
    assert "report.html" in output
    page = (tmp_path / "a" / "report.html").read_text()
    assert '<table class="canary">' in page and "<h3>canaries</h3>" in page  # the real generations, side by side
    assert "<del>" in page or "<ins>" in page  # noise of 0.3 on every weight changes what the model says


def test_repair_writes_report_html(tiny_model, tiny_tuned, mc_data, text_data, tmp_path: Path) -> None:  # noqa: ANN001
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: tiny-repair\nprobes:\n  - {{name: docs_ppl, kind: perplexity, source: {text_data}}}\n")
    out = tmp_path / "repair"
    args = [str(tiny_model), str(tiny_tuned), "--suite", str(suite), "--budget", "docs_ppl:5%", "--steps", "1"]
    output = invoke("repair", *args, "--out", str(out), "--device", "cpu")
    assert f"{out / 'report.html'}" in output
    page = (out / "report.html").read_text()
    assert "Chosen alpha" in page and len(re.findall(r"<img ", page)) == 2  # the alpha curve, the change
