"""The audit's headline: accuracy leads, and it says where the finer measure saw what accuracy did not."""

from __future__ import annotations

from forgetless.evaluation.audit import holm, summarize
from forgetless.probes import Comparison


def comparison(probe: str, metric: str, delta: float, low: float, high: float, verdict: str) -> Comparison:
    return Comparison(probe, "general", metric, True, 0.6, 0.6 + delta, delta, None, low, high, None, 200, verdict)


def test_headline_names_probes_where_only_the_log_probability_saw_forgetting() -> None:
    comparisons = [
        comparison("arc", "acc", -0.02, -0.06, 0.02, "kept"),
        comparison("arc", "gold_logprob", -0.1, -0.15, -0.05, "forgot"),
        comparison("piqa", "acc", -0.08, -0.12, -0.04, "forgot"),
        comparison("piqa", "gold_logprob", -0.2, -0.3, -0.1, "forgot"),
        comparison("boolq", "acc", 0.0, -0.03, 0.03, "kept"),
        comparison("boolq", "gold_logprob", 0.0, -0.02, 0.02, "kept"),
    ]
    summary = summarize(comparisons)
    assert summary["verdicts"] == {"arc": "kept", "piqa": "forgot", "boolq": "kept"}  # accuracy is the verdict
    assert summary["headline"].startswith("2 of 3 general probes kept within noise or improved; piqa forgot")
    assert summary["headline"].endswith("gold-answer log-probability fell beyond noise where accuracy did not: arc")


def test_a_generation_measure_that_forgot_counts_as_forgetting() -> None:
    """Issue 15: exact match (primary) kept while every continuation took the fine-tune's template is forgetting."""
    leak = Comparison("gen", "general", "leak", False, 0.0, 1.0, 1.0, None, 0.926, 1.0, None, 100, "forgot")
    repetition = Comparison(
        "gen", "general", "repetition", False, 0.21, 0.5, 0.29, None, 0.23, 0.35, None, 100, "forgot"
    )
    comparisons = [
        comparison("gen", "exact_match", 0.01, -0.027, 0.049, "kept"),
        leak,
        repetition,
        comparison("arc", "acc", 0.0, -0.03, 0.03, "kept"),
        comparison("arc", "gold_logprob", -0.1, -0.15, -0.05, "forgot"),  # finer, named apart: not a verdict
    ]
    summary = summarize(comparisons)
    assert summary["verdicts"] == {"gen": "forgot", "arc": "kept"}
    assert summary["by_verdict"]["forgot"] == ["gen"]
    assert summary["headline"].startswith(
        "1 of 2 general probes kept within noise or improved; gen forgot: leak 0.0 -> 100.0 (+100.0 points "
        "[+92.6, +100.0]), repetition 0.210 -> 0.500 (+0.290 [+0.230, +0.350])"
    )
    kept = summarize([comparisons[0], comparisons[3]])  # the same probe without the leak: kept
    assert kept["verdicts"]["gen"] == "kept" and kept["headline"].startswith("2 of 2 general probes kept")


def test_forgetting_is_claimed_at_a_family_wise_rate_over_the_general_probes() -> None:
    """Five probes each 'forgot' at 95% alone (p 0.03) are not five forgotten probes: Holm at 5% over five
    needs p <= 0.01 for the first. A probe at p 0.001 is forgotten whatever the others do."""

    def tested(probe: str, p: float, verdict: str) -> Comparison:
        return Comparison(probe, "general", "acc", True, 0.6, 0.55, -0.05, None, -0.09, -0.01, p, 200, verdict)

    five = [tested(f"p{i}", 0.03, "forgot") for i in range(5)]
    summary = summarize(five)
    assert summary["by_verdict"]["forgot"] == [] and summary["headline"].startswith("5 of 5 general probes kept")
    summary = summarize([*five, tested("big", 0.001, "forgot")])
    assert summary["by_verdict"]["forgot"] == ["big"]
    assert holm({"a": 0.001, "b": 0.03, "c": 0.04}) == {"a"}  # 0.001 <= 0.05 / 3, then 0.03 > 0.05 / 2: stop
    target = Comparison("t", "target", "perplexity", False, 20, 10, -10, -0.5, -12, -8, 0.04, 50, "improved")
    assert summarize([target, *five])["verdicts"]["t"] == "improved"  # a target keeps its own verdict
