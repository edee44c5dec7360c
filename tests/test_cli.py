"""The CLI end to end on the tiny model: eval, audit, ls, cache reuse, and errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from forgetless.cli.main import app

runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_eval_writes_json_and_markdown(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    result = invoke(
        "eval", "--model", str(tiny_model), "--suite", str(tiny_suite), "--out", str(out), "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "eval.json").read_text())
    assert data["schema"] == "forgetless.eval/1"
    assert [p["name"] for p in data["probes"]] == ["docs_ppl", "mc", "canaries"]
    assert all(p["cached"] is False for p in data["probes"])
    assert "| docs_ppl | perplexity |" in (out / "eval.md").read_text()
    assert "docs_ppl" in result.output and "wrote" in result.output
    # The second run reuses every probe's cached result and gives the same numbers.
    again = invoke("eval", "--model", str(tiny_model), "--suite", str(tiny_suite), "--out", str(out), "--device", "cpu")
    assert again.exit_code == 0
    cached = json.loads((out / "eval.json").read_text())
    assert all(p["cached"] for p in cached["probes"])
    assert [p["metrics"] for p in cached["probes"]] == [p["metrics"] for p in data["probes"]]


def test_cache_is_invalidated_by_changed_data(tiny_model, tiny_suite, mc_data, tmp_path) -> None:  # noqa: ANN001
    invoke(
        "eval", "--model", str(tiny_model), "--suite", str(tiny_suite), "--out", str(tmp_path / "a"), "--device", "cpu"
    )
    edited = tmp_path / "mc.jsonl"
    edited.write_text(mc_data.read_text().replace("what?", "which?"))
    suite = Path(tiny_suite.read_text().replace(str(mc_data), str(edited)))
    (tmp_path / "s2.yaml").write_text(str(suite))
    invoke(
        "eval",
        "--model",
        str(tiny_model),
        "--suite",
        str(tmp_path / "s2.yaml"),
        "--out",
        str(tmp_path / "b"),
        "--device",
        "cpu",
    )
    probes = {p["name"]: p["cached"] for p in json.loads((tmp_path / "b" / "eval.json").read_text())["probes"]}
    assert probes == {"docs_ppl": True, "mc": False, "canaries": True}


def test_audit_of_identical_models_keeps_everything(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "audit"
    result = invoke(
        "audit", str(tiny_model), str(tiny_model), "--suite", str(tiny_suite), "--out", str(out), "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "audit.json").read_text())
    primary = {c["probe"]: c for c in reversed(data["comparisons"])}
    assert primary["docs_ppl"]["delta"] == 0 and primary["docs_ppl"]["verdict"] == "kept"
    assert primary["mc"]["delta"] == 0 and primary["mc"]["verdict"] == "kept"
    assert data["tuned"]["probes"][0]["cached"]  # same weights: the second eval is all cache hits
    assert "3 of 3 general probes kept" in data["summary"]["headline"]


def test_audit_finds_forgetting_and_target(tiny_model, tiny_tuned, tiny_suite, text_data, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "audit"
    result = invoke(
        "audit",
        str(tiny_model),
        str(tiny_tuned),
        "--suite",
        str(tiny_suite),
        "--target",
        str(text_data),
        "--out",
        str(out),
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "audit.json").read_text())
    ppl = next(c for c in data["comparisons"] if c["probe"] == "docs_ppl" and c["metric"] == "perplexity")
    # Heavy random noise on every weight makes held-out text far less likely: beyond noise.
    assert ppl["after"] > ppl["before"] and ppl["low"] > 0 and ppl["verdict"] == "forgot"
    assert "perplexity degradation" in ppl["note"]
    target = [c for c in data["comparisons"] if c["probe"] == "target"]
    assert target and target[0]["role"] == "target"
    assert data["summary"]["headline"].startswith("target target:")
    markdown = (out / "audit.md").read_text()
    assert "docs_ppl" in markdown and "forgot" in markdown and "## Canary generations: canaries" in markdown


def test_ls() -> None:
    probes = invoke("ls", "probes")
    assert probes.exit_code == 0 and "choice" in probes.output and "perplexity" in probes.output
    suites = invoke("ls", "suites")
    assert suites.exit_code == 0 and "general" in suites.output and "quick" in suites.output
    bad = runner.invoke(app, ["ls", "probs"])
    assert bad.exit_code == 2 and "did you mean 'probes'" in bad.output


def test_errors_exit_2_with_the_fix(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    cases = [
        (["eval", "--model", str(tmp_path / "nope")], "does not exist"),
        (["eval", "--model", "someone/not-here", "--suite", str(tiny_suite)], "hub ids need a network connection"),
        (["eval", "--suite", "genral"], "did you mean 'general'"),
        (
            ["eval", "--model", str(tiny_model), "--suite", str(tiny_suite), "--limit", "0"],
            "--limit 0 must be at least 1",
        ),
        (
            ["eval", "--model", str(tiny_model), "--suite", str(tiny_suite), "--target", str(tmp_path / "x.txt")],
            "--target",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output
