"""Legends that say which procedure made the numbers shown, written from what the code runs.

`PROCEDURES` is the one description of each paired test (`metrics.paired_tests`, by the `kind` each
comparison records in `test`), and a legend lists only the kinds of the comparisons it stands under.
Budget legends are `guard.procedure.describe`, the procedure's own sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from forgetless.guard.procedure import describe
from forgetless.report.units import unit_of

# {test kind: what it is}; `{draws}` and `{seed}` are filled from the test's own record.
PROCEDURES = {
    "paired_binary": "Tango's score test for the difference of paired proportions, from the items lost and gained "
    "(McNemar's z at zero change)",
    "paired_mean": "Student's t on the per-item changes",
    "log_ratio": "a delta-method Student's t on the log ratio of perplexity (the per-document negative "
    "log-likelihood sums before and after)",
    "bootstrap_mean": "studentized bootstrap (bootstrap-t) of the mean per-item change, {draws} resamples, seed {seed}",
    "bootstrap_log_ratio": "studentized bootstrap (bootstrap-t) of the log ratio of perplexity, {draws} resamples, "
    "seed {seed}",
}
# What each test kind measures, to name it in a legend.
MEASURES = {
    "paired_binary": "accuracy",
    "paired_mean": "per-item scores (gold answer log-probability)",
    "log_ratio": "perplexity",
    "bootstrap_mean": "per-item scores",
    "bootstrap_log_ratio": "perplexity",
}
# One model's own intervals (an eval): by the unit of the probe's primary metric.
SINGLE = {
    "accuracy": "Wilson's score interval",
    "perplexity": "a delta-method Student's t interval on log perplexity, over documents",
    "other": "the mean with lm-evaluation-harness's standard error (normal approximation)",
}
UNTESTED = "no paired test recorded (a bootstrap or a count; see the comparison's note)"


def procedure(kind: str, test: dict[str, Any] | None = None) -> str:
    """The description of one test kind, with its recorded settings (resamples, seed) when it has them."""
    text = PROCEDURES[kind]
    settings = {"draws": "?", "seed": "?", **(test or {})}
    return text.format(**settings)


def comparison_legend(comparisons: Iterable[dict[str, Any]]) -> str:
    """Which test made the intervals and p-values of these comparisons: the kinds present, in a fixed order."""
    found: dict[str, dict[str, Any]] = {}
    untested = False
    for c in comparisons:
        test = c.get("test")
        kind = test.get("kind") if isinstance(test, dict) else None
        if kind in PROCEDURES:
            found.setdefault(kind, test)  # type: ignore[arg-type]
        elif c.get("low") is not None:
            untested = True
    parts = [f"{MEASURES[k]}: {procedure(k, found[k])}" for k in PROCEDURES if k in found]
    if untested:
        parts.append(f"other measures: {UNTESTED}")
    return "Intervals and p-values: " + "; ".join(parts) + "." if parts else ""


def verdict_legend(comparisons: Iterable[dict[str, Any]]) -> str:
    """The audit tables' legend: what the verdicts mean and which tests made them."""
    tests = comparison_legend(comparisons)
    return (
        "Same items before and after. Verdicts: forgot or improved only when the 95% paired interval of the "
        "change excludes zero, kept otherwise." + (f" {tests}" if tests else "")
    )


def eval_legend(result: dict[str, Any]) -> str:
    """One model's intervals, for the kinds of primary metric the evaluation has."""
    kinds = []
    for probe in result["probes"]:
        metric = probe["primary"]
        if metric not in probe["metrics"] or probe["metrics"][metric].get("low") is None:
            continue
        unit = unit_of(metric)
        kinds.append("accuracy" if unit == "points" else "perplexity" if unit == "percent" else "other")
    shown = [f"{kind}: {SINGLE[kind]}" for kind in SINGLE if kind in kinds]
    return "95% intervals: " + "; ".join(shown) + "." if shown else ""


def budget_legend(false_alarm: float | None) -> str:
    """The budget's decision procedure in one sentence (guard.procedure), at the rate it was judged at."""
    return "" if false_alarm is None else f"Budget verdicts: {describe(false_alarm)}."
