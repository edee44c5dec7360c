"""Encoder probes: linear probe (cross-fitted logistic regression), embedding ranking, head accuracy."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from forgetless.errors import ForgetlessError
from forgetless.models import load_encoder, load_model
from forgetless.probes import ScoreOptions
from forgetless.probes.classifier import ClassifierConfig, ClassifierProbe
from forgetless.probes.embedding import EmbeddingConfig, EmbeddingProbe
from forgetless.probes.linear import (
    LinearProbe,
    LinearProbeConfig,
    cross_fitted_predictions,
    senteval_features,
    stratified_folds,
)
from tests.encoders.conftest import write_jsonl
from tests.encoders.encoder_setup import KEPT_HELD, sentence


def scored(probe, lm):  # noqa: ANN001, ANN201
    return probe.score(lm, probe.prepare(lm.tokenizer), ScoreOptions())


def test_folds_are_stratified_seeded_and_even() -> None:
    labels = [0] * 30 + [1] * 20
    folds = stratified_folds(labels, 5, seed=3)
    assert folds == stratified_folds(labels, 5, seed=3) != stratified_folds(labels, 5, seed=4)
    for fold in range(5):
        members = [y for y, f in zip(labels, folds, strict=True) if f == fold]
        assert len(members) == 10 and members.count(1) == 4  # every fold keeps the 60/40 class balance


def test_cross_fitting_predicts_every_item_held_out() -> None:
    rng = np.random.default_rng(0)
    labels = [i % 3 for i in range(90)]
    features = np.eye(3)[labels] * 3 + rng.normal(0, 0.3, (90, 3))  # three separable classes
    predictions = cross_fitted_predictions(features, labels, stratified_folds(labels, 5, 0), c=1.0)
    assert predictions.tolist() == labels
    noise = rng.normal(size=(90, 3))  # no signal: held-out predictions are near chance, not memorized
    assert (cross_fitted_predictions(noise, labels, stratified_folds(labels, 5, 0), 1.0) == labels).mean() < 0.6
    u, v = np.ones((2, 4)), np.zeros((2, 4))
    assert senteval_features(u, v).shape == (2, 16)


def test_linear_probe_reads_what_the_encoder_knows(encoder_base: Path, tiny_bert: Path, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "joint.jsonl", KEPT_HELD[:200])
    probe = LinearProbe(LinearProbeConfig(name="joint", source=str(path), pooling="cls", c=1.0))
    result = scored(probe, load_model(str(encoder_base), device="cpu"))
    assert result.metrics["acc"].value > 0.95 and result.n_items == 200
    assert result.metrics["acc"].low <= result.metrics["acc"].value <= result.metrics["acc"].high
    (same,) = probe.compare(result, result)
    assert same.delta == 0 and same.verdict == "kept" and same.p_value == 1.0
    worse = scored(probe, load_model(str(tiny_bert), device="cpu"))  # the untrained encoder
    (change,) = probe.compare(result, worse)
    assert change.metric == "acc" and change.delta < 0 and change.verdict == "forgot" and change.p_value < 0.01


def test_linear_probe_needs_two_classes(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "one.jsonl", [{"sentence": "the cat sees a ball .", "label": 0}] * 20)
    probe = LinearProbe(LinearProbeConfig(name="one", source=str(path)))
    with pytest.raises(ForgetlessError, match="needs two classes and at least 10 items"):
        probe.prepare(None)


def pairs(n: int) -> list[dict]:
    """Sentence pairs scored by how many of subject, verb and object they share (0..3)."""
    rng, rows = random.Random(5), []
    for _ in range(n):
        a, b = sentence(rng)[0], sentence(rng)[0]
        if rng.random() < 0.4:
            b = a
        shared = sum(x == y for x, y in zip(a.split()[1:3], b.split()[1:3], strict=True)) + (
            a.split()[-2] == b.split()[-2]
        )
        rows.append({"sentence1": a, "sentence2": b, "label": shared / 3})
    return rows


def test_embedding_probe_ranks_pairs_and_retrieves_partners(encoder_base: Path, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", pairs(120))
    probe = EmbeddingProbe(EmbeddingConfig(name="sim", source=str(path), positive=1.0))
    result = scored(probe, load_model(str(encoder_base), device="cpu"))
    rho, recall = result.metrics["spearman"], result.metrics["recall_at_1"]
    assert result.primary == "spearman" and rho.value > 0.5 and rho.low < rho.value < rho.high
    assert recall.value > 0.3  # identical sentences find each other, unless a duplicate ties them
    comparisons = probe.compare(result, result)
    assert [c.metric for c in comparisons] == ["spearman", "recall_at_1"]
    assert all(c.delta == 0 and c.verdict == "kept" for c in comparisons)


def test_head_probe_needs_a_head_and_labels_that_fit(tiny_bert: Path, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "three.jsonl", [{"sentence": "the cat sees a ball .", "label": i % 3} for i in range(9)]
    )
    probe = ClassifierProbe(ClassifierConfig(name="head", source=str(path)))
    with pytest.raises(ForgetlessError, match="reads a classification head, and BertModel has none"):
        scored(probe, load_model(str(tiny_bert), device="cpu"))
    with pytest.raises(ForgetlessError, match=r"labels 2 \(3 items\) do not fit a head of 2 labels"):
        scored(probe, load_encoder(str(tiny_bert), num_labels=2, device="cpu"))
    result = scored(probe, load_encoder(str(tiny_bert), num_labels=3, device="cpu"))
    assert result.kind == "classifier" and result.n_items == 9 and len(result.items["pred"]) == 9
