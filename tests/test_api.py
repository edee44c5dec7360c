"""forgetless.evaluate / forgetless.audit: the same numbers and files as the CLI, for paths and models in memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import forgetless
from forgetless.cli.main import app
from forgetless.errors import ConfigError, ForgetlessError

runner = CliRunner()
# On the tiny pair (tests/conftest.py) this budget meets all three outcomes: docs_ppl rises 367%
# (interval excludes zero: over), mc drops 4.2 points on 24 items (past 1pt, inside noise), the
# canaries do not move (within).
BUDGET = "docs_ppl:5%,mc:1pt,canaries:10pt"


def cli(*args: str, code: int = 0) -> None:
    result = runner.invoke(app, [*args, "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == code, result.output


def numbers(evaluation: dict[str, Any]) -> str:
    """What the probes measured (everything but time taken and cache use), as JSON: NaN equals NaN there."""
    return json.dumps([{k: v for k, v in p.items() if k not in ("seconds", "cached")} for p in evaluation["probes"]])


def in_memory(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def test_evaluate_by_path_and_in_memory_gives_the_cli_numbers(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    cli("eval", "--model", str(tiny_model), "--suite", str(tiny_suite), "--out", str(tmp_path / "cli"))
    written = json.loads((tmp_path / "cli" / "eval.json").read_text())

    by_path = forgetless.evaluate(str(tiny_model), tiny_suite, device="cpu", cache=False)
    model, tokenizer = in_memory(tiny_model)
    model.train()  # scored in eval mode, handed back as it came
    held = forgetless.evaluate(model, tiny_suite, tokenizer=tokenizer, cache=False)

    assert model.training
    assert isinstance(by_path, forgetless.EvalResult) and isinstance(held, forgetless.EvalResult)
    assert not any(p.cached for p in [*by_path.probes, *held.probes])  # scored again, not read back
    assert numbers(by_path.to_json()) == numbers(written)
    assert numbers(held.to_json()) == numbers(written)
    assert by_path.model.to_json() == written["model"]
    assert (held.model.source, held.model.fingerprint) == ("memory", written["model"]["fingerprint"])
    assert by_path.scores() == {p["name"]: p["metrics"][p["primary"]]["value"] for p in written["probes"]}
    assert by_path.probe("mc").metrics["acc"].low is not None


def test_audit_by_path_and_in_memory_gives_the_cli_numbers(
    tiny_model, tiny_tuned, tiny_suite, text_data, tmp_path
) -> None:  # noqa: ANN001, E501
    out = tmp_path / "cli"
    cli(
        "audit",
        str(tiny_model),
        str(tiny_tuned),
        "--suite",
        str(tiny_suite),
        "--target",
        str(text_data),
        "--out",
        str(out),
    )
    written = json.loads((out / "audit.json").read_text())

    by_path = forgetless.audit(str(tiny_model), str(tiny_tuned), suite=tiny_suite, target=text_data, device="cpu")
    tuned, tokenizer = in_memory(tiny_tuned)
    mixed = forgetless.audit(
        str(tiny_model), tuned, suite=tiny_suite, target=text_data, tokenizer=tokenizer, cache=False
    )

    assert "guard" not in written and by_path.budget is None and by_path.status is None
    for result in (by_path, mixed):
        data = result.to_json()
        assert json.dumps(data["comparisons"]) == json.dumps(written["comparisons"])
        assert data["summary"] == written["summary"]
        assert numbers(data["tuned"]) == numbers(written["tuned"])
    assert by_path.verdicts == written["summary"]["verdicts"]
    assert by_path.primary()["docs_ppl"].verdict == "forgot"
    assert by_path.primary()["target"].role == "target"


def test_audit_with_a_budget_says_over_within_or_inconclusive_per_probe(
    tiny_model, tiny_tuned, tiny_suite, tmp_path
) -> None:  # noqa: ANN001, E501
    out = tmp_path / "cli"
    args = ["--suite", str(tiny_suite), "--budget", BUDGET, "--out", str(out)]
    cli("audit", str(tiny_model), str(tiny_tuned), *args, code=3)  # 3: over budget (cli/exit_codes.py)
    written = json.loads((out / "audit.json").read_text())

    result = forgetless.audit(str(tiny_model), str(tiny_tuned), suite=tiny_suite, budget=BUDGET, device="cpu")

    # 7 canary prompts cannot show a loss inside 10 points: inconclusive, as is mc's 4.2 against 1 point.
    assert result.budget_status() == {"docs_ppl": "over", "mc": "inconclusive", "canaries": "inconclusive"}
    assert result.status == "over" and result.within_budget is False
    mc = next(c for c in result.checks if c.probe == "mc")
    assert (mc.metric, mc.unit, mc.limit, round(mc.change, 1)) == ("acc", "points", 1.0, 4.2)
    assert result.to_json()["guard"] == written["guard"]
    assert written["guard"]["budget"] == BUDGET and written["guard"]["status"] == "over"
    assert "within_budget" not in written["guard"]
    # over: 5% split over 3 checks; within: 5% for each (an intersection-union test, guard.procedure).
    assert all(c.over_level == pytest.approx(0.05 / 3) and c.within_level == pytest.approx(0.05) for c in result.checks)
    assert all(c.level == pytest.approx(1 - 0.05 / 3 - 0.05) for c in result.checks)
    markdown = (out / "audit.md").read_text()
    assert "Status: **over**. OVER budget `docs_ppl:5%,mc:1pt,canaries:10pt`: docs_ppl." in markdown
    assert "Budget verdicts: over: at most 5% false alarms per run" in markdown  # guard.procedure.describe
    assert (
        f"- mc: acc drop +4.2 points [{mc.low:+.1f}, {mc.high:+.1f}] at {100 * mc.level:.4g}% (limit 1 points, "
        "inconclusive" in markdown
    )
    assert result.budget_verdict.startswith("OVER budget docs_ppl:5%,mc:1pt,canaries:10pt")


def test_a_bad_budget_fails_before_any_model_loads(tiny_suite) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError) as error:
        forgetless.audit("no/such-model", "no/such-tuned", suite=tiny_suite, budget="mc:5%,nothere:2pt")
    assert error.value.problems == [
        "budget 'mc:5%': 'mc' is measured by acc, which a limit in percent cannot bound; use pt (accuracy points)",
        "budget 'nothere:2pt': no watched probe is named 'nothere' (probes: canaries, docs_ppl, mc)",
    ]


def test_a_model_in_memory_needs_its_tokenizer(tiny_model, tiny_suite) -> None:  # noqa: ANN001
    model, _ = in_memory(tiny_model)
    with pytest.raises(ForgetlessError, match=r"LlamaForCausalLM in memory was passed without its tokenizer"):
        forgetless.evaluate(model, tiny_suite)
    with pytest.raises(ForgetlessError, match=r"limit=0 must be at least 1"):
        forgetless.evaluate(model, tiny_suite, limit=0)


def test_write_gives_the_cli_files_byte_for_byte(tiny_model, tiny_tuned, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    cli("eval", "--model", str(tiny_model), "--suite", str(tiny_suite), "--out", str(tmp_path / "eval"))
    cli(
        "audit",
        str(tiny_model),
        str(tiny_tuned),
        "--suite",
        str(tiny_suite),
        "--budget",
        BUDGET,
        "--out",
        str(tmp_path / "audit"),
        code=3,  # over budget
    )

    for kind, cls in (("eval", forgetless.EvalResult), ("audit", forgetless.Audit)):
        data = json.loads((tmp_path / kind / f"{kind}.json").read_text())
        result = cls.from_json(data)
        assert json.dumps(result.to_json()) == json.dumps(data)  # the round trip keeps every key, in order
        paths = result.write(tmp_path / f"again-{kind}")
        assert [p.name for p in paths] == [f"{kind}.json", f"{kind}.md", "report.html"]
        for path in paths:
            assert path.read_bytes() == (tmp_path / kind / path.name).read_bytes(), path.name
    evaluation = json.loads((tmp_path / "eval" / "eval.json").read_text())
    with pytest.raises(ForgetlessError, match="schema 'forgetless.eval/1', not 'forgetless.audit/1'"):
        forgetless.Audit.from_json(evaluation)


def test_import_forgetless_is_light_and_the_surface_small() -> None:
    code = "import sys, forgetless; print(sorted(m for m in ('torch', 'transformers', 'rich') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    assert len(forgetless.__all__) <= 15
    for name in forgetless.__all__:
        if name != "__version__":
            assert getattr(forgetless, name).__doc__, name
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        forgetless.nope  # noqa: B018
