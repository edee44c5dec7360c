"""Sequential checks: parts of the items first, the rest only when a verdict is open; same rate, less work."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forgetless.cache import ResultCache
from forgetless.evaluation.audit import compare_evals
from forgetless.evaluation.evaluate import evaluate, score_probe
from forgetless.guard.budget import Budget
from forgetless.guard.sequential import PART_WITHIN, PARTS, SequentialScorer
from forgetless.metrics import paired_accuracy_delta
from forgetless.models import load_model
from forgetless.probes import Comparison, ProbeResult, ScoreOptions, take_items
from forgetless.probes.choice import ChoiceConfig, ChoiceProbe
from forgetless.suites import load_suite


def scorer_on(tiny_model: Path, tiny_tuned: Path, tiny_suite: Path) -> tuple[Any, Any, Any, dict[str, int]]:
    suite = load_suite(str(tiny_suite))
    probes = [p for p in suite.probes if p.config.kind != "canary"]
    base = load_model(str(tiny_model), device="cpu")
    baseline = evaluate(base, suite)
    baseline["probes"] = [r for r in baseline["probes"] if r["kind"] != "canary"]
    tuned = load_model(str(tiny_tuned), device="cpu")
    scored: dict[str, int] = {}

    def score(probe: Any) -> ProbeResult:
        result = score_probe(tuned, probe, ResultCache(), ScoreOptions())[0]
        scored[probe.config.name] = scored.get(probe.config.name, 0) + result.n_items
        return result

    return SequentialScorer(probes, base.tokenizer, baseline), score, (probes, baseline, tuned), scored


def test_a_clear_within_stops_at_the_first_part(tiny_model, tiny_tuned, tiny_suite) -> None:  # noqa: ANN001
    scorer, score, _, scored = scorer_on(tiny_model, tiny_tuned, tiny_suite)
    result = scorer.check(score, Budget.parse("docs_ppl:5000%"), alpha=0.05)
    assert result.looks == 1 and result.share == PARTS[0]
    assert [c.status for c in result.checks] == ["within"]
    assert scored == {"docs_ppl": math.ceil(PARTS[0] * 16), "mc": math.ceil(PARTS[0] * 24)}  # a quarter of the work
    assert {c.n for c in result.comparisons if c.probe == "mc"} == {6}


def test_an_open_verdict_costs_one_full_check_and_equals_it(tiny_model, tiny_tuned, tiny_suite) -> None:  # noqa: ANN001
    scorer, score, (probes, baseline, tuned), scored = scorer_on(tiny_model, tiny_tuned, tiny_suite)
    budget = Budget.parse("docs_ppl:0.001%,mc:0.001pt")  # no part can be within limits this tight
    result = scorer.check(score, budget, alpha=0.05)
    assert result.looks == len(PARTS) + 1 and result.share == 1.0
    assert scored == {"docs_ppl": 16, "mc": 24}  # every item once: the parts add up to one full check
    # The merged parts are the full check: same estimates, intervals and verdicts (item order aside).
    full = evaluate(tuned, load_suite_without_canaries(probes))
    # Within is split over the check's looks (a tenth to each part, the rest to the full set); over at the full set's.
    whole = budget.check(compare_evals(probes, baseline, full), 0.05, 0.05 * (1 - PART_WITHIN * len(PARTS)))
    for part, one in zip(result.checks, whole, strict=True):
        assert (part.probe, part.status) == (one.probe, one.status)
        assert part.change == pytest.approx(one.change, rel=1e-9)
        assert (part.low, part.high) == pytest.approx((one.low, one.high), rel=1e-6)


def load_suite_without_canaries(probes: list[Any]) -> Any:
    from forgetless.suites import Suite

    return Suite(name="tiny", description="", probes=probes, path=Path("tiny"))


# -- the error rates, by simulation through the same code ----------------------------------------------------


class Synthetic(ChoiceProbe):
    """A two-choice probe whose per-item answers are given, scored by indices (no model)."""

    def __init__(self) -> None:
        super().__init__(ChoiceConfig.model_construct(name="sim", kind="choice", role="general", primary="acc", seed=7))

    def prepare(self, tokenizer: Any) -> dict[str, Any]:
        return {}

    def subset(self, prepared: Any, indices: list[int]) -> dict[str, Any]:
        return {"indices": indices}

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        """Accuracy only (what a points limit bounds): the log-probability measures would only slow the runs."""
        return [Comparison.paired(before, "acc", True, paired_accuracy_delta(before.items["acc"], after.items["acc"]))]


def answers(correct: np.ndarray) -> dict[str, list[Any]]:
    lls = [[0.0, -1.0] if c else [-1.0, 0.0] for c in correct]
    right = [int(c) for c in correct]
    return {"lls": lls, "gold": [0] * len(right), "pred": [1 - r for r in right], **{m: right for m in METRICS}}


METRICS = ("acc", "acc_norm", "acc_bytes")


def scored_part(probe: Synthetic, items: dict[str, list[Any]], part: Any) -> ProbeResult:
    return probe.from_items(take_items(items, part.indices), 0.0)


def simulate(drop_points: float, limit: str, runs: int, n: int = 200, seed: int = 0) -> dict[str, float]:
    """One check of one probe, `runs` times: base accuracy 0.6, 5% of wrong answers turn right, and enough
    right answers turn wrong for an expected drop of `drop_points`."""
    rng = np.random.default_rng(seed)
    probe = Synthetic()
    gained = 0.05
    lost = (drop_points / 100 + 0.4 * gained) / 0.6
    counts = {"early_within": 0, "over": 0, "over_full": 0, "share": 0.0}
    budget = Budget.parse(limit)
    for _ in range(runs):
        before = rng.random(n) < 0.6
        after = np.where(before, rng.random(n) >= lost, rng.random(n) < gained)
        after_items = answers(after)
        base = probe.from_items(answers(before), 0.0)
        scorer = SequentialScorer([probe], None, {"probes": [base.to_dict()]})
        result = scorer.check(partial(scored_part, probe, after_items), budget, 0.05)
        over = any(c.status == "over" for c in result.checks)
        full = budget.check(probe.compare(base, probe.from_items(after_items, 0.0)), 0.05)
        over_full = any(c.status == "over" for c in full)
        assert over <= over_full  # stopping early can only take an alarm away, never add one
        counts["early_within"] += result.share < 1.0
        counts["over"] += over
        counts["over_full"] += over_full
        counts["share"] += result.share / runs
    return {key: value / runs if key != "share" else value for key, value in counts.items()}


def test_a_loss_at_its_limit_is_rarely_let_through_early() -> None:
    # Truth exactly at the 10-point limit. Stopping early with "within" is the one miss a part can add; the
    # parts' levels (a tenth of the check's 0.05 each) sum to 0.01. Measured, seeds 0-2: 0.0025-0.0075.
    # Bound: 0.05 + 2 Monte Carlo standard errors at 400 runs (0.072). `simulate` also asserts, run by run,
    # that a sequential "over" implies the full check's "over" (stopping early never adds an alarm, so the
    # run's rate is unchanged).
    runs = 400
    rates = simulate(drop_points=10.0, limit="10pt", runs=runs)
    assert rates["early_within"] <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs), rates
    assert rates["over"] <= rates["over_full"]


def test_no_change_against_its_limit_is_settled_on_part_of_the_items() -> None:
    # No expected change (4% of answers flip, half each way) against a 10-point limit at n = 200. Measured,
    # seeds 0-2 (each part at a tenth of the check's within level): 0.80-0.84 of the checks stopped before the
    # full set, scoring 0.50-0.54 of the items on average; the assertions leave room (>= 0.7, <= 0.65).
    rates = simulate(drop_points=0.0, limit="10pt", runs=100, n=200)
    assert rates["early_within"] >= 0.7, rates
    assert rates["share"] <= 0.65, rates
