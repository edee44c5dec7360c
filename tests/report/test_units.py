"""Units of the report: worked examples of each conversion, and the metric families kept equal to the budget's."""

from __future__ import annotations

import math

import pytest

from forgetless.report.units import (
    ACCURACY_METRICS,
    budget_change,
    budget_line,
    change,
    fmt_change,
    fmt_interval,
    fmt_value,
    unit_of,
)
from tests.report.samples import comparison


def test_accuracy_metrics_match_the_budget() -> None:
    from forgetless.guard.budget import ACCURACY_METRICS as BUDGET_ACCURACY
    from forgetless.guard.budget import PERPLEXITY_METRICS as BUDGET_PERPLEXITY
    from forgetless.report.units import PERPLEXITY_METRICS

    assert ACCURACY_METRICS == BUDGET_ACCURACY and PERPLEXITY_METRICS == BUDGET_PERPLEXITY
    assert unit_of("acc") == "points" and unit_of("perplexity") == "percent" and unit_of("similarity") is None
    assert unit_of("exact_match") == "points" and unit_of("word_perplexity") == "percent"


def test_change_in_points_and_percent() -> None:
    acc = comparison("arc", "general", "acc", True, 0.63, 0.56, low=-0.14, high=0.0)
    value, low, high, unit = change(acc)
    assert (value, low, high, unit) == (pytest.approx(-7.0), pytest.approx(-14.0), 0.0, "points")
    ppl = comparison("lambada", "general", "perplexity", False, 50.0, 55.0, low=2.5, high=7.5)
    assert change(ppl) == (pytest.approx(10.0), pytest.approx(5.0), pytest.approx(15.0), "percent")
    assert change(comparison("c", "general", "similarity", True, 1.0, 0.5)) is None
    assert change({**ppl, "delta": math.nan}) is None


def test_budget_checks_turn_to_the_natural_direction() -> None:
    assert budget_change({"change": 3.0, "unit": "points"}) == -3.0  # a 3-point drop
    assert budget_change({"change": 6.8, "unit": "percent"}) == 6.8  # a 6.8% rise
    assert budget_line(2, "points") == -2 and budget_line(5, "percent") == 5


def test_formatting() -> None:
    acc = comparison("arc", "general", "acc", True, 0.63, 0.56, low=-0.14, high=0.0)
    assert (fmt_value("acc", 0.63), fmt_change(acc), fmt_interval(acc)) == ("63.0%", "-7.0 pt", "[-14.0, +0.0] pt")
    ppl = comparison("lambada", "general", "perplexity", False, 50.0, 55.0, low=2.5, high=7.5)
    assert (fmt_value("perplexity", 55.0), fmt_change(ppl), fmt_interval(ppl)) == (
        "55.00",
        "+5.00 (+10.0%)",
        "[+2.50, +7.50]",
    )
    assert fmt_value("bwt", math.nan) == "n/a" and fmt_value("acc", None) == ""
