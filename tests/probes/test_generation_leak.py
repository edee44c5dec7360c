"""A fine-tune's template leaking into unrelated generations: markers from its template, measured and paired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from forgetless.models import load_model
from forgetless.probes import ScoreOptions
from forgetless.probes.generation import GenerationConfig, GenerationProbe
from forgetless.probes.templates import literal_lines
from forgetless.suites import load_suite, with_leak_markers
from tests.conftest import sentences

TEMPLATE = "Review: {{ sentence }}\nSentiment: {{ ['negative', 'positive'][label] }}"


def test_a_templates_literal_lines_are_its_markers() -> None:
    assert literal_lines(TEMPLATE) == ["Review:", "Sentiment:"]
    assert literal_lines("{{ text }}") == []  # plain text: nothing to leak
    assert literal_lines("### Q:\n{{ q }}\n### A: {{ a }}{% if x %}\n--\n{% endif %}") == ["### Q:", "### A:"]


def test_markers_reach_every_generation_probe_of_a_suite() -> None:
    suite = load_suite("general")
    marked = with_leak_markers(suite, ["Sentiment:"])
    kinds = {p.config.name: p.config.kind for p in suite.probes}
    for before, after in zip(suite.probes, marked.probes, strict=True):
        if kinds[before.config.name] == "generation":
            assert after.config.leak == ["Sentiment:"] and before.config.leak == []
        else:
            assert after is before
    assert {n for n, k in kinds.items() if k == "generation"} == {"triviaqa_val200", "continuations"}
    assert with_leak_markers(suite, []) is suite


@pytest.fixture(scope="module")
def leaky(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model fine-tuned on records in a template: a sentence, then 'Answer: yes' (60 steps of AdamW
    in a plain loop, about 2 s; SST-2's 'Sentiment:' spells out letter by letter in the tiny tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("leaky")
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.pad_token = tok.eos_token
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    texts = [f"Question: {s}\nAnswer: yes{tok.eos_token}" for s in sentences(256, seed=3)]
    batch = tok(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(60):
        rows = slice(step * 16 % 256, step * 16 % 256 + 16)
        model(
            input_ids=batch.input_ids[rows], attention_mask=batch.attention_mask[rows], labels=labels[rows]
        ).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_a_model_tuned_on_a_template_leaks_it_and_the_comparison_says_so(tiny_model, leaky, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "prompts.jsonl"  # unrelated prompts: sentence openings, no review, no template
    path.write_text("".join(json.dumps({"text": " ".join(s.split()[:3])}) + "\n" for s in sentences(16, seed=9)))
    config = GenerationConfig(name="free", source=str(path), prompt="{{ text }}", max_new_tokens=12)
    markers = literal_lines("Question: {{ sentence }}\nAnswer: {{ ['no', 'yes'][label] }}")
    assert markers == ["Question:", "Answer:"]
    probe = with_leak_markers(_suite(GenerationProbe(config)), markers).probes[0]
    base, tuned = (load_model(str(m), device="cpu") for m in (tiny_model, leaky))
    before = probe.score(base, probe.prepare(base.tokenizer), ScoreOptions())
    after = probe.score(tuned, probe.prepare(tuned.tokenizer), ScoreOptions())
    assert sum(before.items["leak"]) == 0
    assert sum(after.items["leak"]) >= 12, after.items["generation"]
    leak = next(c for c in probe.compare(before, after) if c.metric == "leak")
    assert leak.verdict == "forgot" and leak.low > 0.5  # a rise of the leak rate beyond noise


def _suite(probe: GenerationProbe):  # noqa: ANN202
    from forgetless.suites import Suite

    return Suite("one", "", [probe], Path("."))


def test_a_runs_stage_templates_give_its_markers() -> None:
    from forgetless.config.run import DataConfig
    from forgetless.train.data import template_markers

    sst2 = DataConfig(source=["x.jsonl"], text="Review: {{ sentence }}\nSentiment: {{ label }}")
    assert template_markers(sst2) == ["Review:", "Sentiment:"]
    chat = DataConfig(source=["x.jsonl"], format="chat", prompt="### Q: {{ q }}", response="### A: {{ a }}")
    assert template_markers(chat) == ["### Q:", "### A:"]
    assert template_markers(DataConfig(source=["x.jsonl"])) == []  # plain text: nothing of its own to leak
    assert template_markers(DataConfig(source=["x.jsonl"], format="messages")) == []  # the chat template's
