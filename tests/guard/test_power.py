"""The plan before training: the guard's own verdicts on synthetic changes, worked numbers, and the rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from forgetless.guard import power as pw
from forgetless.guard.budget import Budget
from forgetless.guard.plan import plan_budget, summary, within_chance
from forgetless.guard.procedure import last_over_share
from forgetless.metrics import paired_accuracy_delta
from forgetless.probes.base import Comparison, ProbeResult

LAST = last_over_share(0.05)  # one limit: the last check's whole over-share, 4%


def test_counts_are_judged_as_the_guard_judges_items() -> None:
    # 300 items, 30 lost and 12 gained: the verdict from the counts is the verdict on the 0/1 items.
    before = np.array([1] * 150 + [0] * 150)
    after = before.copy()
    after[:30], after[150:162] = 0, 1
    result = ProbeResult("probe", "choice", "general", "acc", {}, 300, 0.0)
    items = Comparison.paired(result, "acc", True, paired_accuracy_delta(before, after))
    for limit in (1.0, 2.0, 4.0, 10.0):
        (check,) = Budget.parse(f"probe:{limit:g}pt").check([items], LAST, 0.05)
        assert pw._accuracy(300, 30, 12, Budget.parse(f"probe:{limit:g}pt").limits[0], LAST, 0.05) == check.status
    assert check.status == "within"  # 6 points lost of a 10-point limit, a narrow enough interval


def test_worked_numbers_n200_against_n3000() -> None:
    # A 2-point limit, 10% of items flipping, a true loss of 5 points, the last check of a one-limit budget.
    assert pw.accuracy_power(200, 5.0, 2.0, LAST) < 0.30  # the interval is about +-5 points wide at n=200
    assert pw.accuracy_power(3000, 5.0, 2.0, LAST) > 0.80
    assert pw.accuracy_power(200, 2.0, 2.0, LAST) <= LAST + 0.02  # a loss at the limit: the false-alarm level
    assert pw.within_power(200, 2.0, 0.05) < 0.5 < pw.within_power(3000, 2.0, 0.05)


def test_power_rises_with_items_and_with_the_loss() -> None:
    by_n = [pw.accuracy_power(n, 6.0, 2.0, LAST) for n in (100, 200, 400, 800, 1600)]
    by_loss = [pw.accuracy_power(400, loss, 2.0, LAST) for loss in (2.0, 4.0, 6.0, 9.0, 12.0)]
    within = [pw.within_power(n, 3.0, 0.05) for n in (100, 400, 1600)]
    assert by_n == sorted(by_n) and by_n[-1] - by_n[0] > 0.5
    assert by_loss == sorted(by_loss) and by_loss[-1] > 0.9
    assert within == sorted(within)


@pytest.mark.parametrize(("limit", "loss", "level", "kind"), [(2.0, 5.0, LAST, "over"), (5.0, 0.0, 0.05, "within")])
def test_the_normal_items_agree_with_the_monte_carlo_within_10_percent(
    limit: float, loss: float, level: float, kind: str
) -> None:
    n = pw.items_needed(limit, loss, level, kind=kind)
    assert n is not None

    def power(m: int) -> float:
        return pw.accuracy_power(m, loss, limit, level) if kind == "over" else pw.within_power(m, limit, level)

    # The Monte Carlo's own 80% point lies between 0.9 n and 1.1 n (n = 1,095 and 274 here).
    assert power(math.floor(0.9 * n)) < 0.8 <= power(math.ceil(1.1 * n))
    assert pw.items_needed(limit, limit, level, kind=kind) is None  # at the limit: neither question has an answer


def test_smallest_breach_is_the_80_percent_point() -> None:
    breach = pw.smallest_breach(200, 2.0, LAST)
    assert breach is not None and 8.0 < breach < 13.0
    assert pw.accuracy_power(200, breach, 2.0, LAST) >= 0.8 > pw.accuracy_power(200, breach - 0.1, 2.0, LAST)
    assert pw.smallest_breach(3000, 2.0, LAST) < breach  # type: ignore[operator]
    assert pw.smallest_breach(20, 40.0, LAST) is None  # 20 items cannot show a loss past 40 points at 80%


def test_a_pooled_limit_is_one_test_on_the_summed_items() -> None:
    assert pw.accuracy_power(500, 5.0, 2.0, LAST, pooled=True) == pw.accuracy_power(500, 5.0, 2.0, LAST)
    assert pw.within_power(500, 2.0, 0.05, pooled=True) == pw.within_power(500, 2.0, 0.05)


def test_perplexity_power_is_the_normal_chance_past_the_guards_t_critical_value() -> None:
    n, sd, limit, level = 50, 0.2, 5.0, 0.02
    se = sd / math.sqrt(n)
    critical = math.log1p(limit / 100) + float(special.stdtrit(n - 1, 1 - level)) * se
    expected = float(special.ndtr((math.log1p(0.15) - critical) / se))
    assert pw.perplexity_power(n, 15.0, limit, level, sd) == pytest.approx(expected, abs=1e-6)
    breach = pw.perplexity_smallest_breach(n, limit, level, sd)
    assert pw.perplexity_power(n, breach, limit, level, sd) == pytest.approx(0.8, abs=1e-6)
    needed = pw.perplexity_items_needed(limit, 15.0, level, sd)
    assert (
        pw.perplexity_power(needed, 15.0, limit, level, sd)
        >= 0.8
        > pw.perplexity_power(needed - 1, 15.0, limit, level, sd)
    )
    within = pw.perplexity_items_needed(limit, 0.0, 0.05, sd, kind="within")
    assert (
        pw.perplexity_within_power(within, limit, 0.05, sd)
        >= 0.8
        > pw.perplexity_within_power(within - 1, limit, 0.05, sd)
    )


GENERAL = {  # the built-in general suite's budgeted probes: (primary metric, items scored, items the data hold)
    "lambada_ppl": ("perplexity", 300, 5153),
    "arc_easy_val200": ("acc", 200, 570),
    "hellaswag_val100": ("acc_norm", 100, 10042),
    "mmlu_medical": ("acc", 100, 573),
    "triviaqa_val200": ("exact_match", 200, 7993),
    "canaries": ("expect_rate", 7, 8),
}


def test_plan_rows_follow_the_guards_split_and_state_their_assumptions() -> None:
    rows = plan_budget(Budget.parse("2pt,5%"), GENERAL, 0.05, checks=10)
    assert [r.probe for r in rows] == [
        "lambada_ppl",
        "arc_easy_val200",
        "hellaswag_val100",
        "mmlu_medical",
        "triviaqa_val200",
    ]
    assert all(r.over_level == pytest.approx(0.04 / 5) and r.within_level == 0.05 for r in rows)  # canaries unbudgeted
    accuracy = rows[1]
    assert accuracy.test_loss == 5.0 and accuracy.test_power == pw.accuracy_power(200, 5.0, 2.0, 0.008)
    assert accuracy.items_over == pw.items_needed(2.0, 5.0, 0.008) and accuracy.data_suffice is False
    assert not accuracy.resolvable and rows[0].test_loss == 15.0
    text = accuracy.describe()
    assert text.startswith(
        "arc_easy_val200 (2pt): with 200 items the last of 10 checks calls a loss over with 80% power from "
    )
    assert f"a loss of 5 pt is caught in {accuracy.test_power:.0%} of runs" in text
    assert "(the data hold only 570)" in text
    assert text.endswith("assuming 10% of items flip when nothing is lost, half each way (--churn to change)")
    assert "sd 0.2, unknown before training (--ppl-doc-sd to change)" in rows[0].describe()
    assert within_chance(rows) == pytest.approx(math.prod(r.within_power for r in rows))  # type: ignore[misc]
    assert "split over 5 limits" in summary(rows, 0.05)


def test_a_pooled_plan_sums_the_accuracy_items_and_unplanned_limits_still_take_their_share() -> None:
    rows = plan_budget(Budget.parse("pooled:2pt,5%,mmlu_medical:0.05nats,kl:0.05"), GENERAL, 0.05)
    pooled = next(r for r in rows if r.limit == "pooled:2pt")
    assert pooled.probe == "pooled over 4 probes" and pooled.items == 600 and pooled.available == 19178
    assert [r.planned for r in rows] == [True, False, True, False]  # perplexity, nats, pooled, kl
    assert all(r.over_level == pytest.approx(0.04 / 4) for r in rows)
    assert rows[1].describe().startswith("mmlu_medical (0.05nats): not planned: the spread of per-item")
    assert summary(rows, 0.05).endswith("; 2 limit(s) not planned")


def test_unknown_items_are_not_planned_and_an_empty_budget_plans_nothing() -> None:
    (row,) = plan_budget(Budget.parse("arc_easy_val200:5pt"), {"arc_easy_val200": ("acc", None, None)}, 0.05)
    assert not row.planned and "unknown until the data are read" in row.describe()
    assert plan_budget(Budget.parse(""), GENERAL, 0.05) == []
    with pytest.raises(ValueError, match="churn"):
        pw.accuracy_power(100, 5.0, 2.0, LAST, churn=1.5)
