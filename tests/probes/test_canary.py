"""Canary prompts: greedy generations are deterministic, and compared item by item."""

from __future__ import annotations

import dataclasses
import json

import pytest

from forgetless.models import load_model
from forgetless.probes import ScoreOptions
from forgetless.probes.canary import CanaryConfig, CanaryProbe


def test_generations_are_greedy_and_deterministic(tiny_model) -> None:  # noqa: ANN001
    lm = load_model(str(tiny_model), device="cpu")
    probe = CanaryProbe(
        CanaryConfig(name="c", max_new_tokens=5, prompts=["The cat sees", {"prompt": "A dog", "expect": ["zzz"]}])
    )
    prepared = probe.prepare(lm.tokenizer)
    a = probe.score(lm, prepared, ScoreOptions())
    b = probe.score(lm, prepared, ScoreOptions())
    assert a.items["generation"] == b.items["generation"]
    assert all(isinstance(g, str) and g for g in a.items["generation"])
    assert a.primary == "expect_rate" and a.metrics["expect_rate"].value == 0.0  # 'zzz' never appears
    # Batched (left-padded) generation equals generating each prompt alone.
    alone = CanaryProbe(CanaryConfig(name="c", max_new_tokens=5, prompts=["The cat sees"]))
    assert (
        alone.score(lm, alone.prepare(lm.tokenizer), ScoreOptions()).items["generation"][0] == a.items["generation"][0]
    )


def test_compare_counts_changed_generations() -> None:
    probe = CanaryProbe(CanaryConfig(name="c", prompts=["p1", "p2"]))
    from forgetless.probes.base import ProbeResult

    before = ProbeResult(
        "c",
        "canary",
        "general",
        "generations",
        {},
        2,
        0.0,
        {"prompt": ["p1", "p2"], "generation": ["Paris is", "cold"], "hit": [1, 1], "has_expect": [True, True]},
    )
    after = dataclasses.replace(before, items={**before.items, "generation": ["Paris is", "warm"], "hit": [1, 0]})
    expect, unchanged, similarity = probe.compare(before, after)
    assert (expect.metric, expect.before, expect.after, expect.delta) == ("expect_rate", 1.0, 0.5, -0.5)
    assert expect.verdict == "kept"  # one of two prompts is not evidence of forgetting
    assert unchanged.after == 0.5 and "1 of 2 generations identical" in unchanged.note
    assert 0 < similarity.after < 1


def test_prompts_from_a_source(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps({"q": f"Say {w}", "a": w}) for w in ["yes", "no"]) + "\n")
    probe = CanaryProbe(CanaryConfig(name="c", source=str(path), prompt="{{ q }}:", expect="{{ [a] }}"))
    prompts = probe.build_prompts()
    assert [(p.prompt, p.expect) for p in prompts] == [("Say yes:", ["yes"]), ("Say no:", ["no"])]


def test_needs_prompts_or_source() -> None:
    with pytest.raises(ValueError, match="either inline `prompts` or a `source`"):
        CanaryConfig(name="c")
