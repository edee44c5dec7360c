"""Budgets: parsing, units, and the check against hand-made comparisons (within, noise, over)."""

from __future__ import annotations

import pytest

from forgetless.errors import ForgetlessError
from forgetless.guard.budget import Budget, Limit, over_budget, parse_limit
from forgetless.probes import Comparison


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
    assert (round(check.change, 1), check.limit, check.status) == (14.3, 30.0, "within")


def test_check_within_noise_and_over() -> None:
    budget = Budget.parse("2pt,5%")
    checks = budget.check(
        [
            comparison("arc", "acc", 0.60, 0.59, -0.03, 0.01),  # 1 point down: within
            comparison("hella", "acc", 0.60, 0.56, -0.09, 0.01),  # 4 points, interval includes 0: noise
            comparison("piqa", "acc", 0.60, 0.50, -0.14, -0.06),  # 10 points, beyond noise: over
            comparison("lambada", "perplexity", 20.0, 21.5, 0.5, 2.5),  # +7.5%, beyond noise: over
            comparison("wiki", "perplexity", 20.0, 20.8, 0.2, 1.4),  # +4%: within
        ]
    )
    got = {c.probe: (round(c.change, 6), c.status) for c in checks}
    assert got == {
        "arc": (1.0, "within"),
        "hella": (4.0, "noise"),
        "piqa": (10.0, "over"),
        "lambada": (7.5, "over"),
        "wiki": (4.0, "within"),
    }
    assert [c.probe for c in over_budget(checks)] == ["piqa", "lambada"]
    assert checks[2].describe() == "piqa: acc drop +10.0 points (limit 2 points, over)"


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
        (["arc:2pt", "arc:5%"], "budget 'arc:2pt,arc:5%' limits probe 'arc' twice: 'arc:2pt' and 'arc:5%'"),
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
