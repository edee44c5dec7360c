"""The generation probe: greedy generations scored per item (exact match, repetition, leak), and paired."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from forgetless.errors import ForgetlessError
from forgetless.models import load_model
from forgetless.probes import ScoreOptions, take_items
from forgetless.probes.base import ProbeResult
from forgetless.probes.generation import GenerationConfig, GenerationProbe

PROMPTS = ["The cat sees", "A dog likes", "My friend paints", "The teacher finds", "A bird", "Our team builds"]


@pytest.fixture(scope="module")
def lm(tiny_model: Path):  # noqa: ANN201
    return load_model(str(tiny_model), device="cpu")


@torch.inference_mode()
def alone(lm, prompt: str, max_new: int) -> str:  # noqa: ANN001
    """The model's greedy continuation of one prompt, unbatched, straight from transformers."""
    ids = torch.tensor([lm.tokenizer(prompt)["input_ids"]])
    out = lm.model.generate(input_ids=ids, max_new_tokens=max_new, do_sample=False, pad_token_id=1)
    return lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def probe_on(tmp_path: Path, records: list[dict], **settings) -> GenerationProbe:  # noqa: ANN003
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return GenerationProbe(GenerationConfig(name="gen", source=str(path), prompt="{{ q }}", **settings))


def test_exact_match_of_known_generations_normalizes_case_and_punctuation(lm, tmp_path) -> None:  # noqa: ANN001
    known = [alone(lm, p, 4) for p in PROMPTS[:3]]
    assert all(k.strip() for k in known)
    records = [
        {"q": PROMPTS[0], "a": [known[0].strip().upper() + "!"]},  # case and punctuation differ: a match
        {"q": PROMPTS[1], "a": ["zzz", f"{known[1].strip()}."]},  # any alias may match
        {"q": PROMPTS[2], "a": known[2].strip() + " extra"},  # one string, not the generation
    ]
    probe = probe_on(tmp_path, records, answer="{{ a }}", max_new_tokens=4)
    result = probe.score(lm, probe.prepare(lm.tokenizer), ScoreOptions())
    assert result.items["generation"] == known  # batched and left-padded, as each prompt alone
    assert result.items["exact_match"] == [1, 1, 0]
    assert result.primary == "exact_match" and result.metrics["exact_match"].value == pytest.approx(2 / 3)
    strict = probe_on(tmp_path, records, answer="{{ a }}", max_new_tokens=4, ignore_case=False)
    assert strict.score(lm, strict.prepare(lm.tokenizer), ScoreOptions()).items["exact_match"] == [0, 1, 0]


def piece(text: str) -> str:
    """Two printable ASCII characters from inside a generation (the tiny model's are mostly stray bytes)."""
    return next(
        text[i : i + 2] for i in range(1, len(text) - 1) if text[i : i + 2].isascii() and text[i : i + 2].isalnum()
    )


def test_stop_strings_cut_the_generation(lm, tmp_path) -> None:  # noqa: ANN001
    free = alone(lm, PROMPTS[0], 8)
    stop = piece(free)
    probe = probe_on(tmp_path, [{"q": PROMPTS[0]}], max_new_tokens=8, until=["\n\n\n", stop])
    result = probe.score(lm, probe.prepare(lm.tokenizer), ScoreOptions())
    assert result.items["generation"] == [free.split(stop)[0]] and len(free.split(stop)[0]) < len(free)
    assert result.primary == "repetition" and "exact_match" not in result.metrics


def test_leak_markers(lm, tmp_path) -> None:  # noqa: ANN001
    known = [alone(lm, p, 6) for p in PROMPTS[:2]]
    marker = piece(known[0])
    absent = [m for m in ("Sentiment:", "Review:") if all(m not in k for k in known)]
    probe = probe_on(tmp_path, [{"q": p} for p in PROMPTS[:2]], max_new_tokens=6, leak=[*absent, marker])
    result = probe.score(lm, probe.prepare(lm.tokenizer), ScoreOptions())
    assert result.items["leak"] == [1, int(marker in known[1])]
    assert result.primary == "leak" and result.metrics["leak"].higher_is_better is False
    none = probe_on(tmp_path, [{"q": p} for p in PROMPTS[:2]], max_new_tokens=6, leak=absent)
    assert none.score(lm, none.prepare(lm.tokenizer), ScoreOptions()).items["leak"] == [0, 0]


def test_parts_merged_equal_the_whole(lm, tmp_path) -> None:  # noqa: ANN001
    records = [{"q": p, "a": "sees"} for p in PROMPTS]
    probe = probe_on(tmp_path, records, answer="{{ a }}", max_new_tokens=5, leak=["the"])
    prepared = probe.prepare(lm.tokenizer)
    whole = probe.score(lm, prepared, ScoreOptions())
    order = [4, 1, 5, 0, 3, 2]
    parts = [probe.score(lm, probe.subset(prepared, order[:2]), ScoreOptions()),
             probe.score(lm, probe.subset(prepared, order[2:]), ScoreOptions())]  # fmt: skip
    merged = probe.from_items({k: [v for p in parts for v in p.items[k]] for k in whole.items}, 0.0)
    assert merged.items == take_items(whole.items, order)
    for metric, value in whole.metrics.items():
        assert merged.metrics[metric].value == pytest.approx(value.value)
    assert probe.subset(prepared, order[:2])["material"]["requests"] == [
        prepared["material"]["requests"][i] for i in order[:2]
    ]


def result(items: dict) -> ProbeResult:
    return GenerationProbe(
        GenerationConfig(name="gen", source="x.jsonl", prompt="{{ q }}", answer="{{ a }}", leak=["Sentiment:"])
    ).from_items(items, 0.0)


def test_paired_comparisons_of_a_collapse() -> None:
    n = 40
    before = result(
        {
            "prompt": ["q"] * n,
            "generation": ["Paris"] * 10 + ["a city in France"] * 30,
            "answers": [["Paris"]] * n,
            "exact_match": [1] * 10 + [0] * 30,
            "leak": [0] * n,
            "repetition": [0.0] * n,
        }
    )
    collapsed = "a sprawling , sprawling , sprawling , sprawling\nSentiment: positive"
    after = dataclasses.replace(
        before,
        items={
            **before.items,
            "generation": ["Paris"] * 2 + [collapsed] * 38,
            "exact_match": [1] * 2 + [0] * 38,
            "leak": [0] * 2 + [1] * 38,
            "repetition": [0.0] * 2 + [0.5] * 38,
        },
    )
    probe = GenerationProbe(
        GenerationConfig(name="gen", source="x.jsonl", prompt="{{ q }}", answer="{{ a }}", leak=["Sentiment:"])
    )
    em, leak, rep, unchanged = probe.compare(before, after)
    assert (em.metric, em.delta, em.verdict, em.higher_is_better) == (
        "exact_match",
        pytest.approx(-0.2),
        "forgot",
        True,
    )
    assert em.test["kind"] == "paired_binary" and (em.test["lost"], em.test["gained"]) == (8, 0)
    assert (leak.metric, leak.delta, leak.verdict) == ("leak", pytest.approx(0.95), "forgot")  # a rise is worse
    assert (rep.metric, rep.delta, rep.verdict) == ("repetition", pytest.approx(0.475), "forgot")
    assert rep.test["kind"] == "bootstrap_mean"  # 40 generations: bootstrap-t tails (20 or more)
    assert unchanged.verdict == "info" and "2 of 40 generations identical" in unchanged.note


def test_a_budget_in_points_bounds_exact_match() -> None:
    from forgetless.guard.budget import Budget

    n = 200
    before = result(
        {
            "prompt": ["q"] * n,
            "generation": ["x"] * n,
            "answers": [["x"]] * n,
            "exact_match": [1] * 40 + [0] * 160,
            "leak": [0] * n,
            "repetition": [0.0] * n,
        }  # fmt: skip
    )
    after = dataclasses.replace(before, items={**before.items, "exact_match": [1] * 10 + [0] * 190})
    probe = GenerationProbe(GenerationConfig(name="gen", source="x.jsonl", prompt="{{ q }}", answer="{{ a }}"))
    (check,) = Budget.parse("2pt").check(probe.compare(before, after))
    assert (check.probe, check.metric, check.unit, check.status) == ("gen", "exact_match", "points", "over")
    assert check.change == pytest.approx(15.0)


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="needs `source`"):
        GenerationConfig(name="g", prompt="{{ q }}")
    with pytest.raises(ValueError, match="primary exact_match needs `answer`"):
        GenerationConfig(name="g", source="x.jsonl", prompt="{{ q }}", primary="exact_match")
    with pytest.raises(ValueError, match="not a regular expression"):
        GenerationConfig(name="g", source="x.jsonl", prompt="{{ q }}", answer="{{ a }}", regexes_to_ignore=["("])


def test_an_answer_that_is_not_text_is_refused(tmp_path) -> None:  # noqa: ANN001
    probe = probe_on(tmp_path, [{"q": "x", "a": {"k": 1}}], answer="{{ a }}")
    with pytest.raises(ForgetlessError, match="not a string or a non-empty list"):
        probe.build_items()


def test_the_suites_generation_probes_read_the_packaged_data() -> None:
    from forgetless.suites import load_suite

    for suite in ("general", "quick"):
        (item, *rest) = load_suite(suite, limit=3).probe("triviaqa_val3").build_items()
        prompt, golds = item
        assert len(rest) == 2 and prompt.startswith("Question: Which planet") and prompt.endswith("?\nAnswer:")
        assert golds and all(isinstance(g, str) and g for g in golds)  # TriviaQA's aliases
    probe = load_suite("general", limit=3).probe("continuations")
    assert probe.config.primary == "repetition" and probe.config.leak == []  # leak markers come from a run
    assert all(len(p.split()) == 40 and not golds for p, golds in probe.build_items())
