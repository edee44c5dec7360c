"""The built-in `encoder` suite renders on the packaged data; marked `real`: the packaged MiniLM scores it."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from forgetless.probes import ScoreOptions
from forgetless.suites import load_suite


def test_encoder_suite_builds_its_items_from_the_packaged_data(tiny_bert: Path) -> None:
    suite = load_suite("encoder", limit=12)
    assert [p.config.name for p in suite.probes] == ["rte_probe", "mrpc_probe", "mmlu_topic", "mrpc_similarity"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)  # any tokenizer: this checks templates and labels
    for probe in suite.probes:
        prepared = probe.prepare(tokenizer)
        assert prepared["material"]["inputs"], probe.config.name
    topic = suite.probe("mmlu_topic").prepare(tokenizer)
    assert set(topic["labels"]) <= set(range(5)) and len(set(topic["labels"])) >= 2


@pytest.mark.real
def test_minilm_scores_the_encoder_suite() -> None:
    from forgetless.models import load_model

    lm = load_model("minilm", device="cpu")
    assert lm.source == "builtin" and type(lm.model).__name__ == "BertModel"
    assert sum(p.numel() for p in lm.model.parameters()) == 22_713_216
    suite = load_suite("encoder", limit=60)
    similarity = suite.probe("mrpc_similarity")
    result = similarity.score(lm, similarity.prepare(lm.tokenizer), ScoreOptions())
    assert result.metrics["spearman"].value > 0.2 and result.metrics["recall_at_1"].value > 0.8
    topic = suite.probe("mmlu_topic")
    assert topic.score(lm, topic.prepare(lm.tokenizer), ScoreOptions()).metrics["acc"].value > 0.7
