"""EvalResult and Audit read a result document and write it back key for key, extra keys included."""

from __future__ import annotations

import json
from typing import Any

from forgetless.evaluation.results import Audit, BudgetCheck, EvalResult
from tests.report import samples


def _with_configs(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The report samples, completed as `evaluate` writes them: cache keys, then `cached`; probe_configs."""
    probes = []
    for p in evaluation["probes"]:
        rest = {k: v for k, v in p.items() if k != "cached"}
        probes.append(
            {**rest, "cache_key": "c" + p["name"], "items_key": "i" + p["name"], "scored": "", "cached": p["cached"]}
        )
    configs = {p["name"]: p["items_key"] for p in probes}
    return {
        **{k: v for k, v in evaluation.items() if k != "seconds"},
        "probes": probes,
        "probe_configs": configs,
        "seconds": evaluation["seconds"],
    }


def audit_document() -> dict[str, Any]:
    data = samples.audit_result()
    data["base"], data["tuned"] = _with_configs(data["base"]), _with_configs(data["tuned"])
    return data


def test_an_eval_round_trips_with_typed_fields() -> None:
    data = {**_with_configs(samples.eval_result()), "training": {"loss_curve": [[1, 2.5]]}}  # a run stage's extra
    result = EvalResult.from_json(data)
    assert json.dumps(result.to_json()) == json.dumps(data)
    assert (result.model.spec, result.model.dtype, result.suite.name) == ("base-model", "float32", "general")
    assert result.probe("arc_easy").metrics["acc"].value == 0.63
    assert result.extra == {"training": {"loss_curve": [[1, 2.5]]}}


def test_an_audit_round_trips_with_and_without_a_budget() -> None:
    data = {**audit_document(), "task": {"name": "sst2", "num_labels": 2}}  # classify's extra key
    plain = Audit.from_json(data)
    assert json.dumps(plain.to_json()) == json.dumps(data)
    assert (plain.budget, plain.checks, plain.status, plain.budget_status()) == (None, [], None, {})
    assert plain.primary()["lambada_ppl"].verdict == "forgot"

    checks = [samples.check("lambada_ppl", "perplexity", 6.8, 5, "percent", "over")]
    budgeted = {**audit_document(), "guard": {"budget": "5%", "final": checks, "status": "over"}}
    audit = Audit.from_json(budgeted)
    assert json.dumps(audit.to_json()) == json.dumps(budgeted)
    assert audit.checks == [BudgetCheck("lambada_ppl", "perplexity", 6.8, 5, "percent", "over", 3.8, 9.8, 0.99, 0.2)]
    assert (audit.budget, audit.status, audit.budget_status()) == ("5%", "over", {"lambada_ppl": "over"})
    assert audit.within_budget is False  # the read-only property older code reads: within only when status is
