"""What the guard may do on a breach, and which weights a rollback restores: the names, checked in one place.

The config (`guard.policy`, `guard.rollback_to`), `forgetless run --policy` and `ForgetGuard(policy=...)`
all check their values here, so a removed policy gets the same message wherever it is written.
"""

from __future__ import annotations

POLICIES = ("warn", "stop", "rollback")
# rollback_to: "within" restores the best check shown within budget (every budgeted check `within`);
# "not_over" the best check not shown over whose estimated losses are all inside their limits (the rule
# before the three statuses were exported, which could restore weights whose loss was never shown to be within budget).
ROLLBACK_TO = ("within", "not_over")
REMOVED = {
    "stop_early": (
        "policy 'stop_early' was removed: it acted on a forecast that has not been shown to beat the last "
        "measured value on real runs (issue 27)",
        "use 'rollback' or 'stop'",
    ),
}


def policy_problem(policy: object) -> str | None:
    """Why `policy` cannot be used (a removed policy: why it was removed and what to use), or None."""
    if policy in REMOVED:
        problem, fix = REMOVED[policy]  # type: ignore[index]
        return f"{problem}; {fix}"
    return None


def rollback_to_problem(value: object) -> str | None:
    if value not in ROLLBACK_TO:
        return (
            f"rollback_to must be one of {', '.join(ROLLBACK_TO)} (got {value!r}); 'within' (the default) restores "
            "only weights shown within budget"
        )
    return None
