"""A budget check of a given status, for tests of what carries the status (tests/test_no_inconclusive_as_within.py)."""

from __future__ import annotations

from forgetless.evaluation.results import BudgetCheck


def check(status: str, change: float = 1.0, probe: str = "mc") -> BudgetCheck:
    return BudgetCheck(probe, "acc", change, 2.0, "points", status, change - 2.0, change + 2.0, 0.95, 0.3, 120)
