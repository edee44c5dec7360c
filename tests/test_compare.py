"""compare: target gain and retention from audits, budget use, the Pareto front, refusals, the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.errors import ForgetlessError
from forgetless.guard.budget import Budget
from forgetless.pipeline.compare import Entry, check_comparable, compare, score
from forgetless.probes import Comparison


def audit(
    acc_after: float,
    ppl_after: float,
    target_after: float,
    *,
    fingerprint: str = "base",
    mc_hash: str = "h1",
    acc_interval: tuple[float, float] | None = None,
) -> dict:
    """A hand-made audit: accuracy 0.60 -> acc_after, perplexity 20 -> ppl_after, target 100 -> target_after.

    Without a saved test the budget judges the 95% interval: by default the accuracy's is the change
    +-0.5 points and the perplexity's +-0.3, so each verdict follows from the estimate."""
    acc_interval = acc_interval or (acc_after - 0.60 - 0.005, acc_after - 0.60 + 0.005)

    def comparison(probe: str, role: str, metric: str, before: float, after: float, low: float, high: float) -> dict:
        higher = metric == "acc"
        verdict = "kept" if low <= 0 <= high else ("improved" if (low > 0) == higher else "forgot")
        c = Comparison(
            probe,
            role,
            metric,
            higher,
            before,
            after,
            after - before,
            after / before - 1,
            low,
            high,
            None,
            100,
            verdict,
        )
        return dataclasses.asdict(c)

    probes = [
        {"name": "mc", "role": "general", "kind": "choice", "n_items": 100},
        {"name": "ppl", "role": "general", "kind": "perplexity", "n_items": 50},
        {"name": "stage_x", "role": "target", "kind": "perplexity", "n_items": 20},
    ]
    base = {"model": {"fingerprint": fingerprint}, "probes": probes, "probe_configs": {"mc": mc_hash, "ppl": "h2"}}
    return {
        "schema": "forgetless.audit/1",
        "base": base,
        "comparisons": [
            comparison("mc", "general", "acc", 0.60, acc_after, *acc_interval),
            comparison("ppl", "general", "perplexity", 20.0, ppl_after, ppl_after - 20.3, ppl_after - 19.7),
            comparison("stage_x", "target", "perplexity", 100.0, target_after, -60.0, -40.0),
        ],
    }


def test_scores_by_hand() -> None:
    entries = [
        Entry("a", "a", audit(0.57, 21.0, 50.0)),  # -3 points, +5% ppl, target -50%
        Entry("b", "b", audit(0.54, 22.0, 40.0)),  # -6 points, +10%, target -60%
        Entry("c", "c", audit(0.54, 24.0, 45.0)),  # worse than b on both axes
    ]
    score(entries, Budget.parse("5pt,10%"))
    a, b, c = entries
    assert a.target_gain == pytest.approx(50.0) and b.target_gain == pytest.approx(60.0)
    assert a.retention == pytest.approx(100 * (0.57 / 0.60 + 20 / 21) / 2)
    assert a.budget_used == pytest.approx(60.0) and a.status == "within"  # 3 of 5 points; 5 of 10%
    assert b.budget_used == pytest.approx(120.0) and b.status == "over"  # 6 of 5 points
    assert c.budget_used == pytest.approx(200.0)  # +20% of 10%
    assert (a.pareto, b.pareto, c.pareto) == (True, True, False)


def test_inconclusive_is_not_over() -> None:
    entry = Entry("n", "n", audit(0.54, 20.0, 50.0, acc_interval=(-0.15, 0.02)))  # loss [-2, 15] around 5
    score([entry], Budget.parse("5pt"))
    assert entry.budget_used == pytest.approx(120.0) and entry.status == "inconclusive"


def test_refuses_other_probes_or_base_and_says_which() -> None:
    entries = [Entry("a", "a", audit(0.57, 21, 50)), Entry("b", "b", audit(0.57, 21, 50, mc_hash="other"))]
    with pytest.raises(ForgetlessError, match="probe 'mc' is configured differently in 'b' and 'a'"):
        check_comparable(entries)
    entries = [Entry("a", "a", audit(0.57, 21, 50)), Entry("b", "b", audit(0.57, 21, 50, fingerprint="x"))]
    with pytest.raises(ForgetlessError, match="'b' was tuned from another base model"):
        check_comparable(entries)


def write(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data))
    return folder


def test_reads_audits_and_demos(tmp_path) -> None:  # noqa: ANN001
    one = write(tmp_path / "one", "audit.json", audit(0.57, 21.0, 50.0))
    demo = write(
        tmp_path / "demo",
        "demo.json",
        {
            "schema": "forgetless.demo/1",
            "methods": {"full": audit(0.50, 30.0, 30.0), "replay": audit(0.60, 20.0, 45.0)},
        },
    )
    fixed = write(
        tmp_path / "fixed",
        "repair.json",
        {"schema": "forgetless.repair/1", "chosen_alpha": 0.375, "budget": "5pt", "audit": audit(0.55, 25.0, 48.0)},
    )
    result = compare([one, demo, fixed], "5pt")
    assert [e["label"] for e in result["entries"]] == ["one", "full", "replay", "repair alpha=0.375"]
    assert result["budget"] == "5pt"
    with pytest.raises(ForgetlessError, match="holds no results.json"):
        compare([tmp_path / "one", tmp_path], None)


def test_real_runs_on_one_frontier(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    from tests.guard.guard_setup import write_guarded

    training = {"steps": 4, "learning_rate": 1e-2, "batch_size": 8, "max_length": 48, "save_steps": 100}
    runner, folders = CliRunner(), []
    for alpha in (0.1, 100.0):
        config = write_guarded(
            tmp_path / f"a{alpha:g}",
            old_base,
            mc_data,
            {"watch": False, "budget": "20%"},
            methods=[{"name": "l2sp", "alpha": alpha}],
            training=training,
        )
        code = runner.invoke(app, ["run", str(config)], catch_exceptions=False).exit_code
        status = json.loads((config.parent / "run" / "results.json").read_text())["guard"]["status"]
        assert code == (3 if status == "over" else 0)  # the final model's status (cli/exit_codes.py)
        folders.append(str(config.parent / "run"))
    result = runner.invoke(app, ["compare", *folders, "--out", str(tmp_path / "cmp")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert data["budget"] == "20%"  # the budget both runs share
    labels = [e["label"] for e in data["entries"]]
    assert labels == ["l2sp(alpha=0.1)", "l2sp(alpha=100)"]
    weak, strong = data["entries"]
    assert weak["target_gain"] > 0 and strong["target_gain"] > 0
    assert weak["budget_used"] > strong["budget_used"]  # strong anchoring uses less of the budget
    assert (tmp_path / "cmp" / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Pareto-optimal" in (tmp_path / "cmp" / "compare.md").read_text()
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "Pareto-optimal" in html and html.count("data:image/png;base64,") == 2  # light and dark frontier
    # A run scored on another suite is refused, naming the probe.
    other = write_guarded(
        tmp_path / "other", old_base, mc_data, {"watch": False}, methods=[{"name": "full"}], training=training
    )
    suite = (other.parent / "suite.yaml").read_text().replace("kind: choice", "kind: choice\n    limit: 10")
    (other.parent / "suite.yaml").write_text(suite)
    assert runner.invoke(app, ["run", str(other)], catch_exceptions=False).exit_code == 0
    refused = runner.invoke(app, ["compare", folders[0], str(other.parent / "run")])
    assert refused.exit_code == 2 and "probe 'mc' is configured differently" in " ".join(refused.output.split())
