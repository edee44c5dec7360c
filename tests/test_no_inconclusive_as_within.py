"""No output writes an inconclusive budget verdict as within: every path carries within / inconclusive / over.

Each case is built so that its checks are inconclusive (the interval of a loss straddles its limit), and
each asserts the status says so and no text claims "within budget": results.json and summary.md of
`forgetless run`, `forgetless.audit`, `Audit.to_json` / `from_json` (old documents too), `audit
--lm-eval-samples`, the watch's points, its `watch/budget_status` log and its rollback, ForgetGuard's
history, repair.json and repair.md, compare, --auto's table, and the reports read from older files.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import forgetless
from forgetless.cli.exit_codes import INCONCLUSIVE, OK
from forgetless.cli.main import app
from forgetless.errors import ConfigError, ForgetlessError
from forgetless.evaluation.results import Audit, budget_status, guard_status, point_status
from forgetless.guard.budget import Budget
from forgetless.guard.watch import Watch, WatchSettings
from forgetless.report.html import render
from forgetless.report.legends import PROCEDURES
from tests.conftest import sentences
from tests.guard.status_setup import check
from tests.methods.forgetting_setup import new_task
from tests.report import samples

runner = CliRunner()
LM_EVAL = Path(__file__).resolve().parent / "data" / "lm_eval_samples"
REMOVED = "policy 'stop_early' was removed: it acted on a forecast that has not been shown to beat the last measured"


def mc_only_suite(folder: Path, mc_data: Path) -> Path:
    path = folder / "suite.yaml"
    path.write_text(
        f"""name: mc-only
probes:
  - name: mc
    kind: choice
    source: {mc_data}
    context: "Question: {{{{ question }}}}\\nAnswer:"
    choices: "{{{{ choices.text }}}}"
    gold: "{{{{ choices.label.index(answerKey) }}}}"
"""
    )
    return path


# -- the status of a set of checks ------------------------------------------------------------------------


def test_budget_status_is_within_only_when_every_check_is_within() -> None:
    assert budget_status([]) is None
    assert budget_status([check("within"), check("within")]) == "within"
    assert budget_status([check("within"), check("inconclusive")]) == "inconclusive"
    assert budget_status([check("within"), {"status": "noise"}]) == "inconclusive"  # documents before 0.4
    assert budget_status([check("inconclusive"), check("over"), check("within")]) == "over"
    assert budget_status([{"status": "something new"}]) == "inconclusive"  # unknown: never within
    # Older files: `within_budget: true` / `within: true` meant only "no check over".
    old_guard = {"budget": "2pt", "final": [check("inconclusive").to_dict()], "within_budget": True}
    assert guard_status(old_guard) == "inconclusive" and guard_status({"budget": "", "final": []}) is None
    assert point_status({"step": 4, "within": True, "checks": [check("inconclusive").to_dict()]}) == "inconclusive"
    assert point_status({"step": 4, "within": True, "checks": [check("within").to_dict()]}) == "within"
    assert point_status({"step": 0, "within": True, "checks": []}) == "within"  # the baseline
    assert point_status({"alpha": 0.0, "within": True, "checks": []}) == "within"  # repair's base
    assert point_status({"step": 4, "within": True, "checks": []}) is None  # no budget: nothing to say


# -- Audit documents ---------------------------------------------------------------------------------------


def audit_document(guard: dict) -> dict:
    from tests.evaluation.test_results import audit_document as document

    return {**document(), "guard": guard}


def test_audit_json_writes_status_and_reads_old_documents_from_their_checks() -> None:
    checks = [check("within", 0.5, "lambada_ppl").to_dict(), check("inconclusive", 2.5, "arc_easy").to_dict()]
    audit = Audit.from_json(audit_document({"budget": "2pt", "final": checks, "status": "inconclusive"}))
    written = audit.to_json()["guard"]
    assert written["status"] == "inconclusive" and "within_budget" not in written
    assert audit.status == "inconclusive" and audit.within_budget is False
    assert not audit.budget_verdict.startswith("within budget")
    # A document written before `status`: `within_budget: true` beside an inconclusive check.
    old = Audit.from_json(audit_document({"budget": "2pt", "final": checks, "within_budget": True}))
    assert old.status == "inconclusive" and old.within_budget is False
    assert old.to_json()["guard"]["status"] == "inconclusive" and "within_budget" not in old.to_json()["guard"]
    rewritten = json.dumps(old.to_json())
    assert '"within_budget"' not in rewritten
    markdown_and_page = render("audit", old.to_json())
    assert "within budget 2pt" not in markdown_and_page and 'id="verdict" class="inconclusive"' in markdown_and_page


def test_api_audit_with_an_inconclusive_budget(tiny_model, tiny_tuned, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    # mc drops 4.2 points on 24 items: past a 1-point limit, inside the noise (tests/test_cli_gate.py).
    result = forgetless.audit(str(tiny_model), str(tiny_tuned), suite=tiny_suite, budget="mc:1pt", device="cpu")
    assert [c.status for c in result.checks] == ["inconclusive"]
    assert result.status == "inconclusive" and result.within_budget is False
    assert result.to_json()["guard"]["status"] == "inconclusive"
    assert Audit.from_json(result.to_json()).status == "inconclusive"
    paths = result.write(tmp_path / "audit")
    markdown = (tmp_path / "audit" / "audit.md").read_text()
    assert "Status: **inconclusive**" in markdown and "within budget" not in markdown
    assert "Budget verdicts: over: at most 5% false alarms per run" in markdown  # guard.procedure.describe
    # The legend names the tests these comparisons were made with, and only those (report.legends).
    kinds = {c.test["kind"] for c in result.comparisons if c.test}
    assert "paired_binary" in kinds and "McNemar's exact" not in markdown
    for kind, text in PROCEDURES.items():
        assert (text.split("{")[0] in markdown) == (kind in kinds), kind
    html = next(p for p in paths if p.name == "report.html").read_text()
    assert 'id="verdict" class="inconclusive"' in html and "within budget mc" not in html
    assert "#d08c1a" in html  # the amber of report.status, for the inconclusive pill and card

    # compare reads the written audits back: inconclusive, never counted within.
    from forgetless.pipeline.compare import compare
    from forgetless.report.compare_page import compare_page, verdict_line

    other = tmp_path / "again"
    other.mkdir()
    (other / "audit.json").write_text((tmp_path / "audit" / "audit.json").read_text())
    compared = compare([tmp_path / "audit", other], "mc:1pt")
    assert [e["status"] for e in compared["entries"]] == ["inconclusive", "inconclusive"]
    line = verdict_line(compared)
    assert "within budget mc:1pt: none" in line and "inconclusive (not shown within)" in line
    assert 'class="pill inconclusive"' in compare_page(compared)


def test_cli_audit_of_lm_eval_samples_says_inconclusive(tmp_path) -> None:  # noqa: ANN001
    args = ["audit", "--lm-eval-samples", str(LM_EVAL / "base"), str(LM_EVAL / "tuned"), "--budget", "tiny_mc:2pt"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "a")], catch_exceptions=False)
    assert result.exit_code == OK, result.output  # inconclusive passes by default...
    said = " ".join(result.output.split())
    assert "exit 0 (pass: inconclusive, not over budget but not shown within it" in said
    assert "within budget tiny_mc" not in said
    written = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert written["guard"]["status"] == "inconclusive" and "within_budget" not in written["guard"]
    assert "within budget" not in (tmp_path / "a" / "audit.md").read_text()
    strict = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--fail-on", "inconclusive"])
    assert strict.exit_code == INCONCLUSIVE, strict.output  # ...and fails when asked to


# -- forgetless run ----------------------------------------------------------------------------------------


def test_run_results_summary_and_watch_say_inconclusive(tiny_model, mc_data, tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "new.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in new_task(40, seed=4)))
    config = {
        "model": str(tiny_model),
        "suite": str(mc_only_suite(tmp_path, mc_data)),
        "device": "cpu",
        "training": {"steps": 2, "learning_rate": 5e-3, "batch_size": 8, "max_length": 32, "save_steps": 100},
        "stages": [{"name": "new", "data": {"source": "new.jsonl", "held_out": 8}}],
        "guard": {"budget": "mc:1pt", "policy": "rollback", "every": 1},
        "diagnostics": {"drift": False, "importance": False, "interference": False},
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["run", str(path), "--fail-on", "inconclusive"], catch_exceptions=False)
    # 24 items cannot show a 1-point loss either way: inconclusive, so --fail-on inconclusive exits 4.
    assert result.exit_code == INCONCLUSIVE, result.output
    said = " ".join(result.output.split())
    assert "Final model: inconclusive: not shown within budget (mc inconclusive; about" in said
    assert "exit 4 (fail: inconclusive" in said and "Final model: within budget" not in said
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    guard = results["guard"]
    assert guard["status"] == "inconclusive" and "within_budget" not in guard
    assert guard["rollback_to"] == "within" and guard["stopped"] is None  # nothing over: nothing done
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "- Final model: inconclusive: not shown within budget (mc inconclusive; about" in summary
    assert "Final model: within budget" not in summary and "within budget." not in summary
    watch = results["stages"][0]["training"]["watch"]
    assert [p["status"] for p in watch["points"]] == ["within", "inconclusive", "inconclusive"]  # step 0, 1, 2
    assert all("within" not in p for p in watch["points"])  # no boolean that says within when none was shown
    on_disk = json.loads((tmp_path / "run" / "stage-1-new" / "watch" / "watch.json").read_text())
    assert [p["status"] for p in on_disk["points"]] == ["within", "inconclusive", "inconclusive"]
    html = (tmp_path / "run" / "report.html").read_text()
    assert 'id="verdict" class="inconclusive"' in html and "within budget mc" not in html


def test_a_removed_policy_is_refused_with_the_reason_and_the_fix(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    from forgetless.guard.forget_guard import ForgetGuard

    with pytest.raises(ConfigError) as caught:
        ForgetGuard(suite=str(tiny_suite), budget="5%", policy="stop_early")
    assert REMOVED in str(caught.value) and "(issue 27); use 'rollback' or 'stop'" in str(caught.value)
    settings = WatchSettings([], {"probes": []}, tmp_path, Budget.parse("5%"), "stop_early")
    with pytest.raises(ForgetlessError) as error:
        Watch(settings, tokenizer=None)
    assert error.value.problem.startswith(REMOVED) and error.value.fix == "use 'rollback' or 'stop'"
    path = tmp_path / "config.yaml"
    config = {
        "model": str(tiny_model),
        "suite": str(tiny_suite),
        "stages": [{"name": "a", "data": {"source": str(tmp_path / "a.jsonl")}}],
        "guard": {"budget": "5%", "policy": "stop_early"},
    }
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in sentences(8)))
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and REMOVED in " ".join(result.output.split())
    assert "use 'rollback' or 'stop'" in result.output
    result = runner.invoke(app, ["validate", str(path), "guard.policy=rollback", "guard.rollback_to=sometimes"])
    assert result.exit_code == 2 and "guard.rollback_to" in result.output


def test_forget_guard_history_says_inconclusive(tiny_model, mc_data, tmp_path) -> None:  # noqa: ANN001
    from transformers import AutoTokenizer

    from forgetless.guard.forget_guard import ForgetGuard
    from tests.integration.script_setup import LogRecorder, plain_trainer

    model = tmp_path / "model"  # the tiny model with a padding token, as a Trainer's collator needs
    shutil.copytree(tiny_model, model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.save_pretrained(model)
    guard = ForgetGuard(suite=str(mc_only_suite(tmp_path, mc_data)), budget="mc:1pt", policy="rollback", every=1)
    recorder = LogRecorder()
    trainer = plain_trainer(model, tmp_path / "out", [recorder], steps=2, learning_rate=5e-3)
    trainer.add_callback(guard)
    trainer.train()
    assert [p["status"] for p in guard.history["points"]] == ["within", "inconclusive", "inconclusive"]
    assert guard.history["stopped"] is None and guard.report()["rollback_to"] == "within"
    logged = [log["watch/budget_status"] for log in recorder.logs if "watch/budget_status" in log]
    assert logged == [0.0, 0.0] and not any("watch/within_budget" in log for log in recorder.logs)


# -- repair ------------------------------------------------------------------------------------------------


def test_repair_never_reports_an_inconclusive_alpha_as_within(tiny_model, tiny_tuned, mc_data, tmp_path) -> None:  # noqa: ANN001
    suite = str(mc_only_suite(tmp_path, mc_data))
    base = ["repair", str(tiny_model), str(tiny_tuned), "--suite", suite, "--budget", "mc:1pt", "--steps", "1"]
    base += ["--device", "cpu"]
    # The fine-tune's mc is inconclusive against 1 point (alpha 1), and so is alpha 0.5.
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "within")], catch_exceptions=False)
    assert result.exit_code == OK, result.output  # the repaired model is the base: within by definition
    data = json.loads((tmp_path / "within" / "repair.json").read_text())
    assert [(p["alpha"], p["status"]) for p in data["curve"]] == [
        (0.0, "within"),
        (0.5, "inconclusive"),
        (1.0, "inconclusive"),
    ]
    assert all("within" not in p for p in data["curve"])
    assert data["accept"] == "within" and data["chosen_alpha"] == 0.0 and data["status"] == "within"
    assert data["summary"].startswith(
        "no alpha > 0 was shown within budget mc:1pt (accept: within): the repaired model is the base (alpha 0, "
        "no target gain); alpha 0.5 is inconclusive: mc"
    )
    markdown = (tmp_path / "within" / "repair.md").read_text()
    assert "Chosen by the largest alpha shown within budget (accept: within); its status: **within**" in markdown
    for alpha in ("0.5", "1"):  # each alpha's status in the curve's last column
        assert re.search(rf"\| {alpha} \| [^|]* inconclusive \| inconclusive \|", markdown), alpha
    assert "| 0 (chosen) |  | within |" in markdown

    # The older rule, asked for: alpha 1 is not over, so it is kept, and said to be inconclusive.
    result = runner.invoke(
        app,
        [*base, "--out", str(tmp_path / "not-over"), "--accept", "not-over", "--fail-on", "inconclusive"],
        catch_exceptions=False,
    )
    assert result.exit_code == INCONCLUSIVE, result.output
    data = json.loads((tmp_path / "not-over" / "repair.json").read_text())
    assert data["accept"] == "not_over" and data["chosen_alpha"] == 1.0 and data["status"] == "inconclusive"
    assert "not shown within it either (inconclusive: mc; about" in data["summary"]
    assert "is within budget" not in data["summary"]
    markdown = (tmp_path / "not-over" / "repair.md").read_text()
    assert "its status: **inconclusive**" in markdown and "nothing needed repair" not in markdown
    html = (tmp_path / "not-over" / "report.html").read_text()
    assert 'id="verdict" class="inconclusive"' in html


def test_reports_read_older_files_from_their_checks() -> None:
    from forgetless.report.repair import curve_table

    run = samples.run_result()
    run["guard"] = {k: v for k, v in run["guard"].items() if k != "status"} | {"within_budget": True}
    for point in run["stages"][-1]["training"]["watch"]["points"]:
        point["within"] = point.pop("status") != "over"
    html = render("run", run)
    assert 'id="verdict" class="inconclusive"' in html and "within budget lambada_ppl" not in html

    repair = samples.repair_result()
    for key in ("accept", "rule", "status", "next_alpha"):
        repair.pop(key)
    repair["curve"][1]["checks"] = [samples.check("lambada_ppl", "perplexity", 3.0, 5, "percent", "inconclusive")]
    for point in repair["curve"]:
        point["within"] = point.pop("status") != "over"  # the old boolean: true for the inconclusive alpha
    _, rows = curve_table(repair)
    assert [row[-1] for row in rows] == ["within", "inconclusive", "over", "over"]
    html = render("repair", copy.deepcopy(repair))
    assert 'id="verdict" class="inconclusive"' in html  # chosen by the not-over rule, and inconclusive


def test_auto_ranks_and_shows_the_status() -> None:
    from forgetless.pipeline.auto import _rank, auto_markdown

    trials = [
        {"value": 0.1, "steps": 2, "rung": 0, "target_change": -0.5, "status": "inconclusive", "run": "a"},
        {"value": 1.0, "steps": 2, "rung": 0, "target_change": -0.1, "status": "within", "run": "b"},
        {"value": 10.0, "steps": 2, "rung": 0, "target_change": -0.9, "status": "over", "run": "c"},
    ]
    assert [t["value"] for t in sorted(trials, key=_rank)] == [1.0, 0.1, 10.0]
    report = {
        "method": "l2sp",
        "field": "alpha",
        "candidates": [0.1, 1.0, 10.0],
        "budget": "2pt",
        "rungs": 1,
        "trials": trials,
        "chosen": {"value": 0.1, "status": "inconclusive", "run": "a"},
    }
    text = auto_markdown(report)
    assert "**alpha = 0.1** (inconclusive: not shown within budget)" in text
    assert "| inconclusive | a |" in text and "| within | b |" in text and "| yes |" not in text
