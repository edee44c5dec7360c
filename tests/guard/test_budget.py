"""Budgets: parsing, units, and the three-way check against the limit (over, within, inconclusive)."""

from __future__ import annotations

import pytest

from forgetless.errors import ForgetlessError
from forgetless.guard.budget import Budget, Limit, over_budget, parse_limit
from forgetless.metrics import PairedMeanTest, paired_accuracy_delta, paired_perplexity_delta
from forgetless.metrics.paired_tests import PairedBinaryTest
from forgetless.probes import Comparison, ProbeResult


def measured(probe: str, lost: int, gained: int, n: int) -> Comparison:
    """An accuracy comparison from counts: `lost` right -> wrong, `gained` wrong -> right of n items."""
    before = [1] * lost + [0] * gained + [1] * (n // 2) + [0] * (n - n // 2 - lost - gained)
    after = [0] * lost + [1] * gained + [1] * (n // 2) + [0] * (n - n // 2 - lost - gained)
    result = ProbeResult(probe, "choice", "general", "acc", {}, n, 0.0)
    return Comparison.paired(result, "acc", True, paired_accuracy_delta(before, after))


def perplexity_change(probe: str, per_token: list[float]) -> Comparison:
    """A perplexity comparison of documents of 50 tokens at 2 nats each, shifted by `per_token` nats."""
    before = [100.0] * len(per_token)
    after = [100.0 + 50 * x for x in per_token]
    result = ProbeResult(probe, "perplexity", "general", "perplexity", {}, len(per_token), 0.0)
    return Comparison.paired(result, "perplexity", False, paired_perplexity_delta(before, after, [50] * len(per_token)))


def comparison(probe: str, metric: str, before: float, after: float, low: float, high: float) -> Comparison:
    higher = metric != "perplexity"
    delta = after - before
    verdict = "kept" if low <= 0 <= high else ("improved" if (low > 0) == higher else "forgot")
    return Comparison(
        probe, "general", metric, higher, before, after, delta, after / before - 1, low, high, None, 100, verdict
    )


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("2pt", Limit(None, 2.0, "points")),
        ("lambada:5%", Limit("lambada", 5.0, "percent")),
        (" arc_easy : 1.5 points", Limit("arc_easy", 1.5, "points")),
        ("mmlu.stem:0.5percent", Limit("mmlu.stem", 0.5, "percent")),
    ],
)
def test_parse_limits(text: str, limit: Limit) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["2", "5 apples", "-2pt", "lambada:", "pt"])
def test_unparseable_limits_name_the_syntax(text: str) -> None:
    with pytest.raises(ForgetlessError, match="is not \\[probe:\\]AMOUNT UNIT"):
        parse_limit(text)


def test_named_limit_overrides_the_global_one_of_its_unit() -> None:
    budget = Budget.parse("2pt,5%,lambada:10%")
    assert budget.limit_for("lambada", "perplexity") == Limit("lambada", 10.0, "percent")
    assert budget.limit_for("wiki", "perplexity") == Limit(None, 5.0, "percent")
    assert budget.limit_for("arc", "acc_norm") == Limit(None, 2.0, "points")
    assert Budget.parse("5%").limit_for("arc", "acc") is None  # no accuracy limit: arc is not budgeted
    assert str(budget) == "2pt,5%,lambada:10%"


def test_canaries_are_budgeted_only_by_name() -> None:
    """One changed answer of 7 canary prompts is 14 points: a global points limit must not judge them."""
    flipped = comparison("canaries", "expect_rate", 6 / 7, 5 / 7, -0.43, 0.0)
    assert Budget.parse("5pt").check([flipped]) == []
    assert Budget.parse("5pt").limit_for("canaries", "expect_rate") is None
    (check,) = Budget.parse("5pt,canaries:30pt").check([flipped])
    # The saved interval puts the loss in [0, 43] points: 30 inside it, so neither over nor within.
    assert (round(check.change, 1), check.limit, check.status) == (14.3, 30.0, "inconclusive")


def test_check_over_within_and_inconclusive() -> None:
    budget = Budget.parse("2pt,5%")
    checks = budget.check(
        [
            measured("arc", 2, 2, 1000),  # no change on 1000 items: the loss is inside 2 points beyond doubt
            measured("hella", 6, 2, 100),  # 4 points down on 100 items: cannot tell 4 from 2
            measured("piqa", 60, 0, 400),  # 15 points down: past 2 beyond doubt
            perplexity_change("lambada", [0.2, 0.18, 0.22, 0.2, 0.19, 0.21] * 5),  # +22%: over 5%
            perplexity_change("wiki", [0.01, -0.01, 0.0, 0.005, -0.005, 0.0] * 5),  # ~0%: within 5%
        ]
    )
    got = {c.probe: (round(c.change, 1), c.status) for c in checks}
    assert got == {
        "arc": (0.0, "within"),
        "hella": (4.0, "inconclusive"),
        "piqa": (15.0, "over"),
        "lambada": (22.1, "over"),
        "wiki": (0.0, "within"),
    }
    assert [c.probe for c in over_budget(checks)] == ["piqa", "lambada"]
    # Five checks share the 5% over-rate (each over at 1%); within is an intersection-union test, each at 5%.
    assert all((c.over_level, c.within_level) == pytest.approx((0.01, 0.05)) for c in checks)
    assert all(c.level == pytest.approx(1 - 0.01 - 0.05) for c in checks)
    piqa, hella = checks[2], checks[1]
    assert piqa.low > 2 and piqa.p_over < 0.01
    assert hella.low < 2 < hella.high and hella.items_to_decide > 100
    assert piqa.describe().startswith("piqa: acc drop +15.0 points [+")
    assert "(limit 2 points, over)" in piqa.describe()
    assert "straddles the limit; about" in hella.describe()


def test_verdict_agrees_with_its_p_value_at_every_level() -> None:
    """Over exactly when the one-sided p against the limit is at most the check's share."""
    c = measured("arc", 12, 2, 200)  # 5 points down
    for alpha in (0.2, 0.05, 0.01, 0.001):
        (check,) = Budget.parse("2pt").check([c], alpha)
        assert (check.status == "over") == (check.p_over <= alpha)
        assert (check.status == "over") == (check.low > 2)


def test_a_loss_equal_to_the_limit_is_not_over() -> None:
    """0.14 -> 0.09 is 5.000000000000002 points in floating point; with no spread it is exactly the limit."""
    delta = 0.09 - 0.14
    exact = Comparison(
        "arc",
        "general",
        "acc",
        True,
        0.14,
        0.09,
        delta,
        None,
        delta,
        delta,
        None,
        100,
        "forgot",
        test=PairedMeanTest(delta, 0.0, 100).to_dict(),
    )
    assert 100 * -delta > 5
    (check,) = Budget.parse("5pt").check([exact])
    assert check.status == "inconclusive" and check.items_to_decide is None


def test_the_over_rate_is_split_over_the_probes_and_within_is_not() -> None:
    comparisons = [measured(f"p{i}", 3, 3, 300) for i in range(4)]
    checks = Budget.parse("2pt").check(comparisons, 0.02)
    assert [(c.over_level, c.within_level) for c in checks] == [pytest.approx((0.02 / 4, 0.02))] * 4
    checks = Budget.parse("2pt").check(comparisons, 0.02, within=0.05)
    assert [c.within_level for c in checks] == [pytest.approx(0.05)] * 4
    with pytest.raises(ValueError, match="alpha must be strictly between 0 and 1"):
        Budget.parse("2pt").check(comparisons, 0.0)


def test_documents_without_a_saved_test_are_judged_on_their_interval() -> None:
    # At 15% over three checks each over-share is 5%: a 95% interval's one-sided 97.5% ends can decide it.
    checks = Budget.parse("2pt").check(
        [
            comparison("arc", "acc", 0.60, 0.59, -0.015, -0.005),  # loss [0.5, 1.5]: within
            comparison("hella", "acc", 0.60, 0.56, -0.09, 0.01),  # loss [-1, 9]: inconclusive
            comparison("piqa", "acc", 0.60, 0.50, -0.14, -0.06),  # loss [6, 14]: over
        ],
        0.15,
    )
    assert [(c.status, c.level) for c in checks] == [("within", 0.95), ("inconclusive", 0.95), ("over", 0.95)]
    # A 95% interval's ends are one-sided 97.5% bounds: a question asked at a smaller level stays open.
    strict = Budget.parse("2pt").check([comparison("piqa", "acc", 0.60, 0.50, -0.14, -0.06)], 0.01)
    assert [c.status for c in strict] == ["inconclusive"]
    assert [c.status for c in Budget.parse("2pt").check([comparison("a", "acc", 0.6, 0.59, -0.015, -0.005)], 0.01)] == [
        "inconclusive"
    ]


def test_pooled_accuracy_is_one_test_over_every_accuracy_probes_items() -> None:
    """`pooled:2pt` sums the items lost, gained and scored of the general accuracy probes: 3 probes of 300
    items that each churn 30 items both ways make one test on 900 items, which shows within 2 points
    where each probe alone cannot."""
    comparisons = [measured(f"p{i}", 15, 15, 300) for i in range(3)]
    alone = Budget.parse("2pt").check(comparisons, 0.05)
    assert [c.status for c in alone] == ["inconclusive"] * 3
    (pooled,) = Budget.parse("pooled:2pt").check(comparisons, 0.05)
    assert (pooled.probe, pooled.metric, pooled.status, pooled.change) == ("pooled", "acc", "within", 0.0)
    test = PairedBinaryTest(lost=45, gained=45, n=900)  # the same statistic on the summed counts
    assert pooled.high == pytest.approx(-100 * test.interval(1 - 2 * 0.05)[0])
    both = Budget.parse("2pt,pooled:2pt").check(comparisons, 0.05)
    assert [c.probe for c in both] == ["p0", "p1", "p2", "pooled"]
    assert both[0].over_level == pytest.approx(0.05 / 4)  # the pooled limit is one more check
    assert Budget.parse("pooled:5%").problems({"arc": "acc"}) == [
        "budget 'pooled:5%': the pooled measure is an accuracy; bound it in pt ('pooled:2pt')"
    ]
    assert Budget.parse("pooled:2pt").problems({"arc": "acc"}) == []
    assert "no watched general probe" in Budget.parse("pooled:2pt").problems({"wiki": "perplexity"})[0]


def test_nats_bound_the_gold_answer_log_probability() -> None:
    logprob = Comparison(
        "arc",
        "general",
        "gold_logprob",
        True,
        -0.9,
        -1.1,
        -0.2,
        None,
        None,
        None,
        None,
        200,
        "forgot",
        test=PairedMeanTest(-0.2, 0.3, 200).to_dict(),
    )
    accuracy = measured("arc", 3, 2, 200)
    checks = Budget.parse("2pt,0.05nats").check([accuracy, logprob])
    assert [(c.metric, c.unit, c.status) for c in checks] == [
        ("acc", "points", "inconclusive"),
        ("gold_logprob", "nats", "over"),  # 0.2 nats lost, +-0.05 at this level: past 0.05
    ]
    assert Budget.parse("0.05nats").limit_for("arc", "acc") == Limit(None, 0.05, "nats")
    problems = Budget.parse("wiki:0.1nats").problems({"wiki": "perplexity"})
    assert problems and "nats bound multiple-choice probes only" in problems[0]


def test_target_probes_and_unbudgeted_metrics_are_skipped() -> None:
    target = comparison("domain", "perplexity", 20.0, 40.0, 10.0, 30.0)
    target.role = "target"
    assert Budget.parse("5%").check([target]) == []


def test_problems_name_unknown_probes_wrong_units_and_targets() -> None:
    budget = Budget.parse("lambada:2pt,arc:5%,nope:1pt,stage_x:5%,3pt")
    problems = budget.problems({"lambada": "perplexity", "arc": "acc"}, targets=["stage_x"])
    assert len(problems) == 4
    assert "use % (perplexity increase)" in problems[0] and "use pt (accuracy points)" in problems[1]
    assert "no watched probe is named 'nope'" in problems[2] and "is the target" in problems[3]


def test_probe_metrics_from_configs(tiny_suite) -> None:  # noqa: ANN001
    from forgetless.guard.budget import probe_metrics
    from forgetless.suites import load_suite

    metrics = probe_metrics(load_suite(str(tiny_suite)).probes)
    assert metrics == {"docs_ppl": "perplexity", "mc": "acc", "canaries": "expect_rate"}  # inline `expect`


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("x:10%,x:20%", "budget 'x:10%,x:20%' limits probe 'x' twice: 'x:10%' and 'x:20%'"),
        (
            "2pt,lambada:5%,3pt",
            "budget '2pt,lambada:5%,3pt' limits every probe measured in points twice: '2pt' and '3pt'",
        ),
        (["arc:2pt", "arc:3pt"], "budget 'arc:2pt,arc:3pt' limits probe 'arc' twice: 'arc:2pt' and 'arc:3pt'"),
    ],
)
def test_a_probe_limited_twice_is_an_error(spec: str | list[str], message: str) -> None:
    with pytest.raises(ForgetlessError) as caught:
        Budget.parse(spec)
    assert caught.value.problem == message and caught.value.fix == "keep one of the two limits"
    assert Budget.parse("2pt,5%,x:10%,y:3pt").limits  # one limit per probe and per unit is fine


def test_duplicate_limits_are_a_config_problem(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    from forgetless.config import load_run_config
    from forgetless.errors import ConfigError
    from tests.test_run import write_config

    config = write_config(tmp_path, tiny_model, tiny_suite, guard={"budget": "docs_ppl:10%,docs_ppl:20%"})
    with pytest.raises(
        ConfigError, match="guard.budget: budget 'docs_ppl:10%,docs_ppl:20%' limits probe 'docs_ppl' twice"
    ):
        load_run_config(config)


def test_a_budget_naming_a_renamed_builtin_probe_gets_its_new_name(tiny_model, tmp_path) -> None:  # noqa: ANN001
    from forgetless.config import load_run_config
    from forgetless.errors import ConfigError
    from tests.test_run import write_config

    # Issue 15: the quick suite's ARC-Easy probe was `arc_easy`; lm-eval's arc_easy is another set of items.
    config = write_config(tmp_path, tiny_model, "quick", guard={"budget": "lambada_ppl:10%,arc_easy:5pt"})
    with pytest.raises(ConfigError) as caught:
        load_run_config(config)
    assert caught.value.problems == [
        "guard.budget 'arc_easy:5pt': 'arc_easy' is now 'arc_easy_val100': it scores 100 validation items, not "
        "lm-eval's arc_easy (the whole ARC-Easy test split); write 'arc_easy_val100:5pt'"
    ]
    budget = Budget.parse("mmlu_stem:2pt,arc_easy_val100:5pt")
    (problem,) = budget.problems({"arc_easy_val100": "acc"})  # the new name is fine; an old one not in the suite:
    assert problem.startswith("budget 'mmlu_stem:2pt': no watched probe is named 'mmlu_stem' (probes: arc_easy_val100)")
    assert problem.endswith(
        "renamed on 2026-11-30 after the sample they score ('mmlu_stem_val<N>', 'mmlu_stem_test<N>')"
        ": they score a sample, not lm-eval's mmlu_stem group (the test splits of all its STEM "
        "subjects)"
    )
