"""What a budget can resolve with the items at hand: accuracy limits no check could ever call within.

An accuracy change is judged on its paired interval. With n items, even a model whose every answer
is unchanged gets an interval of the change of about +-z^2/n (Tango's score interval at zero
discordant pairs), so a limit inside it can be called `over` on a clear breach but never `within`:
the run ends inconclusive whatever happens. The guard says so before training, with the items that
would resolve the limit (the interval shrinks as 1/sqrt(n)). Perplexity and log-probability limits
depend on the spread of per-item changes, unknown before tuning, so only points limits are checked.
"""

from __future__ import annotations

from typing import Any

from forgetless.evaluation.audit import compare_evals
from forgetless.guard.budget import Budget
from forgetless.probes import Probe


def unresolvable(budget: Budget, probes: list[Probe], baseline: dict[str, Any], alpha: float) -> list[str]:
    """One sentence per points limit that a look at false-alarm rate `alpha` cannot call within even if
    nothing changed (the baseline compared with itself)."""
    if not budget:
        return []
    comparisons = compare_evals(probes, baseline, baseline)
    items = {c.probe: c.n for c in comparisons}
    notes = []
    for check in budget.check(comparisons, alpha):
        if check.unit != "points" or check.status == "within" or check.high is None:
            continue
        more = f"about {check.items_to_decide} items" if check.items_to_decide else "more items"
        notes.append(
            f"{check.probe}: a {check.limit:g}-point limit cannot be shown kept with {items[check.probe]} items: "
            f"with no answer changed its interval still reaches {check.high:.1f} points at the last check's "
            f"level, so the guard can stop a clear breach but never call it within; {more}, or a limit "
            f"above {check.high:.1f} points, would resolve it"
        )
    return notes
