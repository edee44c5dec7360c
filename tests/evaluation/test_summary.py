"""The audit's headline: accuracy leads, and it says where the finer measure saw what accuracy did not."""

from __future__ import annotations

from forgetless.evaluation.audit import summarize
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
