"""Limits the items cannot resolve are named before training: the plan's sentences, with the baseline's items."""

from __future__ import annotations

from forgetless.evaluation.evaluate import evaluate
from forgetless.guard.budget import Budget
from forgetless.guard.plan import plan_budget
from forgetless.guard.resolution import unresolvable
from forgetless.models import load_model
from forgetless.suites import load_suite


def test_limits_the_last_check_cannot_resolve_are_named(tiny_model, tiny_suite) -> None:  # noqa: ANN001
    suite = load_suite(str(tiny_suite))
    probes = [p for p in suite.probes if p.config.kind != "canary"]
    baseline = evaluate(load_model(str(tiny_model), device="cpu"), suite)
    baseline["probes"] = [r for r in baseline["probes"] if r["kind"] != "canary"]
    items = {r["name"]: r["n_items"] for r in baseline["probes"]}
    assert items == {"docs_ppl": 16, "mc": 24}
    budget = Budget.parse("5%,mc:5pt")
    notes = unresolvable(budget, probes, baseline, alpha=0.025)
    # The plan of the same budget, items and rate: 24 items cannot call 5 points either way at 80% power.
    plan = plan_budget(budget, {"docs_ppl": ("perplexity", 16, None), "mc": ("acc", 24, None)}, 0.025)
    assert notes == [row.describe() for row in plan if not row.resolvable]
    mc = next(
        note for note in notes if note.startswith("mc (5pt): with 24 items the last check cannot call a loss over")
    )
    assert "within is out of reach at 80% power (" in mc and mc.endswith("(--churn to change)")
    # A wide perplexity limit on 16 documents is resolved (under the stated spread); no budget, no notes.
    assert unresolvable(Budget.parse("docs_ppl:50%"), probes, baseline, alpha=0.025) == []
    assert unresolvable(Budget.parse(""), probes, baseline, alpha=0.025) == []
