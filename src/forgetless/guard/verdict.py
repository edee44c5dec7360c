"""One budgeted comparison against its limit: over, within or inconclusive, from the comparison's own test.

The comparison's delta (after - before, on the metric's scale) becomes a loss in the limit's unit:
accuracy points (100 x the drop), perplexity percent (100 x the relative rise) or nats (the drop of
the gold answer's log-probability). The limit becomes a null value on the delta's scale, and the
comparison's saved test (`Comparison.test`) gives both one-sided p-values against it:

- over: "the loss is at most the limit" is rejected at `share` (the interval lies wholly past it);
- within: "the loss is at least the limit" is rejected at `share` (the interval lies wholly inside);
- inconclusive: neither; the items that would decide it are estimated from the interval's width.

Limits are compared with a tolerance of 1e-9 (relative), so a loss equal to the limit up to
floating-point error (5.000000000000004 against 5) is not past it.
"""

from __future__ import annotations

import math
from typing import Any

from forgetless.evaluation.results import BudgetCheck
from forgetless.metrics.paired_tests import paired_test_from_dict
from forgetless.probes import Comparison


def tolerance(limit: float) -> float:
    return 1e-9 * max(1.0, abs(limit))


def _factor(c: Comparison, unit: str) -> float:
    """Loss in the limit's unit per unit of delta: points 100, percent 100 / before, nats 1."""
    if unit == "percent":
        return 100.0 / c.before
    return 100.0 if unit == "points" else 1.0


def judge(c: Comparison, limit: Any, over: float, within: float | None = None) -> BudgetCheck:
    """`c` against `limit` (a guard.budget.Limit): `over` at one-sided level `over`, `within` at `within`
    (default: the same level). The interval [low, high] of the loss is the set of limits neither test
    rejects: `over` exactly when low > limit, `within` exactly when high < limit."""
    within = over if within is None else within
    sign = 1.0 if c.higher_is_better else -1.0  # a loss is a fall of a higher-is-better metric
    factor = _factor(c, limit.unit)

    def loss(delta: float) -> float:
        return -sign * factor * delta + 0.0  # + 0.0: no "-0.0" in reports

    relative = limit.unit == "percent" and c.relative is not None
    change = 100.0 * c.relative if relative else loss(c.delta)  # type: ignore[operator]
    amount = limit.amount
    if c.test is None:  # a document from before saved tests, or lm-eval without samples: its 95% interval
        return _from_interval(c, limit, change, loss, over, within)
    test = paired_test_from_dict(c.test)
    worse, better = ("less", "greater") if c.higher_is_better else ("greater", "less")
    p_over = test.p_value(-sign * (amount + tolerance(amount)) / factor, worse)
    p_within = test.p_value(-sign * (amount - tolerance(amount)) / factor, better)
    low, high = _bounds(test, loss, over, within) if test.n > 1 else (math.nan, math.nan)
    status = "over" if p_over <= over else "within" if p_within <= within else "inconclusive"
    finite = math.isfinite(low) and math.isfinite(high)
    return BudgetCheck(
        c.probe,
        c.metric,
        change,
        amount,
        limit.unit,
        status,
        low if finite else None,
        high if finite else None,
        1.0 - over - within,
        p_over,
        _items_to_decide(c.n, low, high, change, amount) if status == "inconclusive" and finite else None,
        over,
        within,
        p_within,
    )


def _bounds(test: Any, loss: Any, over: float, within: float) -> tuple[float, float]:
    """The loss's lower end at one-sided `over` and its upper end at one-sided `within`."""
    low = min(loss(x) for x in test.interval(1.0 - 2.0 * over))
    high = max(loss(x) for x in test.interval(1.0 - 2.0 * within))
    return low, high


def _items_to_decide(n: int, low: float, high: float, change: float, limit: float) -> int | None:
    """Items for the interval's half-width to shrink to the distance between the estimate and the
    limit, if the estimate and the per-item spread stay as they are (width ~ 1 / sqrt(n))."""
    gap = abs(change - limit)
    if gap <= tolerance(limit):
        return None
    return math.ceil(n * ((high - low) / 2.0 / gap) ** 2)


def _from_interval(c: Comparison, limit: Any, change: float, loss: Any, over: float, within: float) -> BudgetCheck:
    """Judged on the saved 95% interval alone (no test saved). Its ends are one-sided 97.5% bounds, so
    they decide only a question asked at a level of 2.5% or more; anything stricter stays inconclusive."""
    if c.low is None or c.high is None:
        return BudgetCheck(c.probe, c.metric, change, limit.amount, limit.unit, "inconclusive")
    low, high = sorted((loss(c.low), loss(c.high)))
    if limit.unit == "percent" and c.relative is not None:  # the interval of delta, in percent of before
        low, high = sorted((100.0 * c.low / c.before, 100.0 * c.high / c.before))
    edge, saved = tolerance(limit.amount), 0.025
    status = "inconclusive"
    if low > limit.amount + edge and over >= saved:
        status = "over"
    elif high < limit.amount - edge and within >= saved:
        status = "within"
    return BudgetCheck(c.probe, c.metric, change, limit.amount, limit.unit, status, low, high, 0.95)
