"""`forgetless audit --lm-eval-samples BASE_DIR TUNED_DIR`: files, budget, exit codes, and no lm_eval import."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.evaluation.results import Audit

DATA = Path(__file__).resolve().parent / "data" / "lm_eval_samples"
BASE, TUNED = DATA / "base", DATA / "tuned"
runner = CliRunner()


def audit(base: Path, tuned: Path, *flags: str):  # noqa: ANN201
    return runner.invoke(app, ["audit", "--lm-eval-samples", str(base), str(tuned), *flags], catch_exceptions=False)


def test_writes_the_audit_files_and_fails_the_gate_when_over_budget(tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "audit"
    result = audit(BASE, TUNED, "--budget", "2pt,5%", "--out", str(out))
    assert result.exit_code == 3, result.output
    assert [p.name for p in sorted(out.iterdir())] == ["audit.json", "audit.md", "report.html"]
    written = json.loads((out / "audit.json").read_text())
    assert written["schema"] == "forgetless.audit/1" and written["suite"]["name"] == "lm-eval-samples"
    assert written["base"]["model"]["spec"] == "tiny-base" and written["base"]["model"]["source"] == "lm-eval"
    status = {c["probe"]: c["status"] for c in written["guard"]["final"]}
    assert status["tiny_ppl"] == status["tiny_ll"] == "over"  # perplexity +616% and +2152% against 5%
    assert status["tiny_mc"] == "inconclusive"  # -4.2 points on 24 items
    assert json.dumps(Audit.from_json(written).to_json()) == json.dumps(written)  # `lm_eval` travels in extra
    assert "OVER budget 2pt,5%: tiny_ll, tiny_ppl" in " ".join(result.output.split())
    markdown = (out / "audit.md").read_text()
    assert "- tiny_mc_text: lm-eval tiny_mc_text validation, 12 of 24" in markdown  # what each task scored
    assert "- tiny_gen.lower: lm-eval tiny_gen validation, 8 of 24 (filter lower)" in markdown
    assert "tiny_ppl" in (out / "report.html").read_text()


def test_the_same_run_on_both_sides_is_within_budget(tmp_path) -> None:  # noqa: ANN001
    result = audit(
        BASE, BASE, "--budget", "tiny_ppl:5%,tiny_ll:5%", "--fail-on", "inconclusive", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert {c["status"] for c in json.loads((tmp_path / "audit.json").read_text())["guard"]["final"]} == {"within"}


def test_bad_input_exits_2_with_the_fix(tmp_path) -> None:  # noqa: ANN001
    only_ppl = []
    for side in (BASE, TUNED):  # the runs of one task only: a budget in nats bounds nothing there
        folder = tmp_path / side.name
        for path in side.glob("*/*"):
            if path.name.startswith("results_") or path.name.startswith("samples_tiny_ppl_"):
                (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, folder / path.parent.name / path.name)
        only_ppl.append(folder)
    cases = [
        ((*only_ppl, "--budget", "0.05nats"), "budget '0.05nats' bounds none of the audited probes: tiny_ppl"),
        ((BASE, TUNED, "--budget", "tiny_ppl:2pt"), "measured by word_perplexity, which a limit in points cannot"),
        ((BASE, TUNED, "--device", "cpu", "--limit", "5"), "--limit, --device score a model"),
        ((BASE, tmp_path / "nowhere"), "TUNED '"),
    ]
    for (base, tuned, *flags), message in cases:
        result = audit(base, tuned, *flags, "--out", str(tmp_path / "out"))
        assert result.exit_code == 2, (flags, result.output)
        assert message in " ".join(result.output.split()), (flags, result.output)
        assert "Traceback" not in result.output


def test_reading_samples_never_imports_lm_eval(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # any `import lm_eval` (or of a submodule) now fails
    result = audit(BASE, TUNED, "--budget", "2pt,5%", "--out", str(tmp_path))
    assert result.exit_code == 3, result.output
