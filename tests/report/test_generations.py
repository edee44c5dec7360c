"""The demo's report leads with generation changes (issue 15): in words from the verdicts, then examples."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from forgetless.probes import Comparison
from forgetless.report.generations import SHOWN, generation_news, generations_html, generations_markdown
from forgetless.report.verdict import audit_cards
from tests.probes.test_generation_leak import leaky  # noqa: F401  (the tiny model tuned on a template)

MARKERS = ["Review:", "Sentiment:"]


def _probe(name: str, kind: str, generations: list[str], **items: list[Any]) -> dict[str, Any]:
    prompts = [f"{name} prompt {i}" for i in range(len(generations))]
    return {
        "name": name,
        "kind": kind,
        "role": "general",
        "primary": "repetition" if kind == "generation" else "expect_rate",
        "metrics": {},
        "n_items": len(generations),
        "seconds": 1.0,
        "items": {"prompt": prompts, "generation": generations, **items},
    }


def _compare(probe: str, metric: str, before: float, after: float, low: float, high: float, verdict: str) -> dict:
    higher = metric in ("exact_match", "expect_rate")
    c = Comparison(probe, "general", metric, higher, before, after, after - before, None, low, high, None, 4, verdict)
    return dataclasses.asdict(c)


def audit(collapsed: bool) -> dict[str, Any]:
    """Four continuations and two canaries; `collapsed`: the tuned model answers in the review template."""
    old = ["the old man walked on", "she said nothing more", "it was raining", "a long road"]
    new = [t + "\nSentiment: positive" for t in old] if collapsed else [*old[:3], "a longer road"]
    canary_old, canary_new = ["Paris.", "Thursday"], (["a sprawling , sprawling", "Thursday"] if collapsed else None)
    base = [
        _probe("continuations", "generation", old, leak=[0, 0, 0, 0], repetition=[0.2] * 4),
        _probe("canaries", "canary", canary_old, hit=[1, 1], has_expect=[True, True]),
    ]
    tuned = [
        _probe(
            "continuations", "generation", new, leak=[int(collapsed)] * 4, repetition=[0.5 if collapsed else 0.2] * 4
        ),
        _probe("canaries", "canary", canary_new or canary_old, hit=[0 if collapsed else 1, 1], has_expect=[True, True]),
    ]
    if collapsed:
        comparisons = [
            _compare("continuations", "repetition", 0.21, 0.50, 0.23, 0.35, "forgot"),
            _compare("continuations", "leak", 0.0, 1.0, 0.926, 1.0, "forgot"),
        ]
    else:
        comparisons = [
            _compare("continuations", "repetition", 0.21, 0.22, -0.02, 0.04, "kept"),
            _compare("continuations", "leak", 0.0, 0.0, -0.037, 0.037, "kept"),
        ]
    comparisons.append(_compare("canaries", "expect_rate", 1.0, 0.5 if collapsed else 1.0, -1.0, 0.2, "kept"))
    verdicts = {"continuations": "forgot" if collapsed else "kept", "canaries": "kept"}
    return {
        "base": {"probes": base},
        "tuned": {"probes": tuned},
        "comparisons": comparisons,
        "summary": {"verdicts": verdicts, "headline": ""},
    }


def test_a_collapse_is_named_with_its_numbers_and_a_quiet_method_in_one_line() -> None:
    full = generation_news("full", audit(collapsed=True), MARKERS)
    assert full.changed
    assert full.line == (
        "generations take on the fine-tune's template and repeat themselves more: continuations: 100% contain "
        "'Sentiment:' (0% before; +100.0 points [+92.6, +100.0]), repetition 0.21 -> 0.50 (+0.29 [+0.23, +0.35])"
    )
    ewc = generation_news("ewc", audit(collapsed=False), MARKERS)
    assert not ewc.changed and not ewc.examples
    assert ewc.line == (
        "no generation measure changed beyond noise (continuations: 1 of 4 generations differ from the base's; "
        "canaries: 0 of 2 generations differ from the base's)"
    )
    # Examples: the probe that moved first, in turn with the others; a canary that lost its answer is shown.
    assert len(full.examples) == SHOWN
    assert [e.probe for e in full.examples] == ["continuations", "canaries", "continuations"]
    assert full.examples[1].before == "Paris." and full.examples[1].after == "a sprawling , sprawling"
    # A probe without a leak measure (the canaries) counts the markers its generations took on, untested.
    quiet = audit(collapsed=True)
    quiet["comparisons"] = [c for c in quiet["comparisons"] if c["probe"] == "canaries"]
    quiet["base"]["probes"].pop(0), quiet["tuned"]["probes"].pop(0)
    quiet["tuned"]["probes"][0]["items"]["generation"][1] = "Thursday\nSentiment: positive"
    assert generation_news("lora", quiet, MARKERS).line == (
        "no generation measure changed beyond noise (canaries: 2 of 2 generations differ from the base's, "
        "1 contain 'Sentiment:' (0 before; not tested))"
    )
    # Without the markers a leak is counted, not named.
    assert "contain a template marker" in generation_news("full", audit(collapsed=True)).line


def test_the_markdown_and_html_open_with_the_news() -> None:
    news = [generation_news("full", audit(True), MARKERS), generation_news("ewc", audit(False), MARKERS)]
    text = "\n".join(generations_markdown(news))
    assert text.startswith("## What changed in the generations\n\n- **full**: generations take on the fine-tune's")
    assert "- **ewc**: no generation measure changed beyond noise" in text
    assert (
        "| continuations | continuations prompt 0 | the old man walked on | the old man walked on \u23ce Sentiment:"
        in text
    )
    html = str(generations_html(news))
    assert "<b>ewc</b>: no generation measure changed" in html and "<ins>" in html  # the difference marked
    assert generations_markdown([]) == [] and generations_html([]) is None


def test_the_forgotten_card_counts_a_generation_measure() -> None:
    """The primary metric (repetition here, as in `continuations` without markers) is not all that decides."""
    document = audit(collapsed=True)
    document["comparisons"][0]["verdict"] = "kept"  # primary kept; the leak still forgot
    card = audit_cards(document)[-1]
    assert card["value"] == "1 of 2" and card["detail"] == "continuations leak +100.0 pt"


def test_a_tiny_model_tuned_on_a_template_leads_the_demo_report(tiny_model, leaky, tmp_path: Path) -> None:  # noqa: ANN001, F811
    """The tiny model tuned on 'Question: ...\\nAnswer: yes' (tests/probes/test_generation_leak.py) against itself
    and against the base, through the real probe, audit and demo Markdown."""
    from forgetless.evaluation.audit import build_audit
    from forgetless.evaluation.evaluate import evaluate
    from forgetless.models import load_model
    from forgetless.pipeline.demo import demo_markdown
    from forgetless.probes.generation import GenerationConfig, GenerationProbe
    from forgetless.suites import Suite
    from tests.conftest import sentences

    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"text": " ".join(s.split()[:3])}) + "\n" for s in sentences(16, seed=9)))
    markers = ["Question:", "Answer:"]
    config = GenerationConfig(name="free", source=str(path), prompt="{{ text }}", max_new_tokens=12, leak=markers)
    suite = Suite("one", "", [GenerationProbe(config)], tmp_path)
    base, tuned = (load_model(str(m), device="cpu") for m in (tiny_model, leaky))
    before, after = evaluate(base, suite), evaluate(tuned, suite)
    audits = {"full": build_audit(suite.probes, before, after), "none": build_audit(suite.probes, before, before)}
    assert audits["full"]["summary"]["verdicts"] == {"free": "forgot"}
    result = {
        "settings": {"steps": 1, "learning_rate": 0.1, "batch_size": 1, "seed": 0},
        "recipes": {},
        "suite": "one",
        "budget": "",
        "repair": None,
        "methods": audits,
        "leak_markers": markers,
    }
    text = demo_markdown(result, [])
    first = text.index("## What changed in the generations")
    assert first < text.index("| method |")  # before the accuracy table
    full = next(line for line in text.splitlines() if line.startswith("- **full**"))
    leak = next(c for c in audits["full"]["comparisons"] if c["metric"] == "leak")
    assert f"free: {leak['after']:.0%} contain 'Answer:'" in full, full
    assert f"({leak['before']:.0%} before; {leak['delta'] * 100:+.1f} points [{leak['low'] * 100:+.1f}," in full
    assert "- **none**: no generation measure changed beyond noise (free: 0 of 16 generations differ" in text
    assert "full, the same prompts before and after:" in text and "none, the same prompts" not in text
