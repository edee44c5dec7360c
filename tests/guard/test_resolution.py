"""A points limit that the items cannot resolve is named before training, with what would resolve it."""

from __future__ import annotations

import math

from forgetless.evaluation.evaluate import evaluate
from forgetless.guard.budget import Budget
from forgetless.guard.resolution import unresolvable
from forgetless.metrics.paired_tests import PairedBinaryTest
from forgetless.models import load_model
from forgetless.suites import load_suite


def test_limits_inside_the_no_change_interval_are_named(tiny_model, tiny_suite) -> None:  # noqa: ANN001
    suite = load_suite(str(tiny_suite))
    probes = [p for p in suite.probes if p.config.kind != "canary"]
    baseline = evaluate(load_model(str(tiny_model), device="cpu"), suite)
    baseline["probes"] = [r for r in baseline["probes"] if r["kind"] != "canary"]
    # 24 items; a look at 0.025 split over the budget's two checks (docs_ppl, mc): each one-sided at 0.0125.
    # An unchanged model's interval reaches Tango's bound at zero discordant pairs.
    reach = 100 * PairedBinaryTest(0, 0, 24).interval(1 - 2 * 0.0125)[1]
    assert 12 < reach < 25  # 17.3 points: of the order of z^2 / n = 2.24^2 / 24 = 21
    (note,) = unresolvable(Budget.parse("5%,mc:5pt"), probes, baseline, alpha=0.025)
    assert note.startswith("mc: a 5-point limit cannot be shown kept with 24 items")
    assert f"reaches {reach:.1f} points" in note
    needed = int(note.split("about ")[1].split(" items")[0])
    assert needed == math.ceil(24 * (reach / 5) ** 2)  # the interval shrinks as 1 / sqrt(n)
    assert unresolvable(Budget.parse(f"mc:{math.ceil(reach) + 1}pt"), probes, baseline, alpha=0.025) == []
    assert unresolvable(Budget.parse("5%"), probes, baseline, alpha=0.025) == []  # perplexity: spread unknown
