"""What a budget can resolve with the items at hand, said before training (the watch's notes at step 0).

The plan of the budget (guard.plan) with the items each probe scored on the starting weights: one
sentence for every limit whose last check would miss either question at 80% power, a loss 3 points past
an accuracy limit (3 x a perplexity limit) called over, or a run that only churns answers called within.
A limit the checks cannot call within ends the run inconclusive however little it forgot; one they cannot
call over lets a clear breach through. Each sentence gives the items that would resolve it and its
assumptions (the churn of answers, the spread of per-document perplexity changes).
"""

from __future__ import annotations

from typing import Any

from forgetless.evaluation.audit import compare_evals
from forgetless.guard.budget import Budget
from forgetless.guard.plan import plan_budget
from forgetless.probes import Probe


def unresolvable(budget: Budget, probes: list[Probe], baseline: dict[str, Any], alpha: float) -> list[str]:
    """One sentence per limit the run's last check cannot resolve at 80% power, for probes scored in
    `baseline` and a run whose false-alarm rate is `alpha`."""
    if not budget:
        return []
    items: dict[str, tuple[str, int | None, int | None]] = {}
    for c in compare_evals(probes, baseline, baseline):  # each probe's primary comparison comes first
        if c.role == "general" and c.probe not in items:
            items[c.probe] = (c.metric, c.n, None)
    return [row.describe() for row in plan_budget(budget, items, alpha) if row.planned and not row.resolvable]
