"""Linear probe: how well a logistic regression on frozen sentence features solves a labelled task.

What an encoder knows is what its features make linearly separable (Alain & Bengio, 2016, "Understanding
intermediate layers using linear classifier probes"; SentEval, Conneau & Kiela, 2018). Features are
mean-pooled last hidden states (`probes.features`; `pooling: cls` reads BERT's [CLS] state). A
sentence pair (RTE, MRPC) is encoded as two sentences and joined SentEval's way, [u, v, |u - v|,
u * v] (`pair_features: separate`), or encoded jointly as `[CLS] a [SEP] b [SEP]` (`joint`).

The classifier is scikit-learn's logistic regression on standardized features, L2 strength 1/c. The
default c = 0.01 is strong, for a few hundred items against hundreds to thousands of features (on
MiniLM: MRPC 0.69 at c = 1, 0.72 at c = 0.01). It is cross-fitted: items are split into `folds`
stratified folds, fixed by the seed, and each fold is predicted by a classifier fitted on the
others, so every item gets a held-out prediction. Before and after are scored on the same items
with the same folds: the paired comparison is McNemar's test on the per-item correctness, as for
multiple choice.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from forgetless.data.sources import load_records
from forgetless.errors import ForgetlessError
from forgetless.metrics import accuracy_interval, paired_accuracy_delta
from forgetless.probes.base import PROBES, Comparison, Metric, Probe, ProbeConfig, ProbeResult, ScoreOptions
from forgetless.probes.features import encode, sentence_features
from forgetless.probes.labelled import build_labelled


class LinearProbeConfig(ProbeConfig):
    kind: Literal["linear_probe"] = "linear_probe"
    text: str = Field("{{ sentence }}", description="template of the (first) text")
    text_pair: str | None = Field(None, description="template of the second text of a sentence pair")
    label: str = Field("{{ label }}", description="template of the class index (0..n-1)")
    pair_features: Literal["separate", "joint"] = Field(
        "separate", description="separate: [u, v, |u-v|, u*v] of two encodings; joint: one encoding of both"
    )
    folds: int = Field(5, ge=2, le=20, description="cross-fitting folds: every item is predicted held out")
    c: float = Field(0.01, gt=0, description="inverse L2 strength of the logistic regression (scikit-learn's C)")
    max_length: int = Field(128, gt=1, description="tokens per text")
    pooling: Literal["mean", "cls"] = Field("mean", description="mean of the last hidden states, or [CLS]'s")
    primary: Literal["acc"] = "acc"

    @model_validator(mode="after")
    def _needs_source(self) -> LinearProbeConfig:
        if not self.source:
            raise ValueError("a linear_probe probe needs `source` (a labelled data set)")
        return self


def stratified_folds(labels: list[int], folds: int, seed: int) -> list[int]:
    """A fold per item: each class's items in a seeded random order, dealt round-robin to the folds."""
    rng = np.random.default_rng(seed)
    out = [0] * len(labels)
    offset = 0  # classes continue the deal where the last stopped, so fold sizes stay even
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        for position, index in enumerate(rng.permutation(members)):
            out[int(index)] = (offset + position) % folds
        offset += len(members)
    return out


def cross_fitted_predictions(features: np.ndarray, labels: list[int], folds: list[int], c: float) -> np.ndarray:
    """Each item's class as predicted by a logistic regression fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y, fold_of = np.asarray(labels), np.asarray(folds)
    predictions = np.empty_like(y)
    for fold in np.unique(fold_of):
        train, test = fold_of != fold, fold_of == fold
        if len(np.unique(y[train])) < 2:  # a one-class training split can only predict that class
            predictions[test] = y[train][0]
            continue
        classifier = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        classifier.fit(features[train], y[train])
        predictions[test] = classifier.predict(features[test])
    return predictions


def senteval_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """[u, v, |u - v|, u * v]: (N, 4H) features of a sentence pair from its two (N, H) embeddings."""
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)


@PROBES.register("linear_probe")
class LinearProbe(Probe):
    config_class = LinearProbeConfig
    config: LinearProbeConfig

    def prepare(self, tokenizer: Any) -> dict[str, Any]:
        cfg = self.config
        what = f"probe '{cfg.name}'"
        records = load_records(cfg.source, self.base_dir, what=what)
        data = build_labelled(records, self.sample(len(records)), cfg.text, cfg.text_pair, cfg.label, what)
        labels = data.labels or []
        if len(set(labels)) < 2 or len(labels) < 2 * cfg.folds:
            raise ForgetlessError(
                f"{what}: a linear probe needs two classes and at least {2 * cfg.folds} items "
                f"(got {len(labels)} items of {len(set(labels))} class(es))",
                "point `source` at more labelled data, raise `limit`, or lower `folds`",
            )
        if data.pairs is None or cfg.pair_features == "joint":
            inputs = [encode(tokenizer, data.texts, data.pairs, cfg.max_length)]
        else:
            inputs = [encode(tokenizer, t, None, cfg.max_length) for t in (data.texts, data.pairs)]
        folds = stratified_folds(labels, cfg.folds, cfg.seed)
        material = {"inputs": inputs, "labels": labels, "folds": folds, "c": cfg.c}
        material.update(layout=cfg.pair_features, pooling=cfg.pooling)
        encoded = [e for part in inputs for e in part]  # `texts` sizes the progress bar: one per encoding
        return {"inputs": inputs, "labels": labels, "folds": folds, "texts": encoded, "material": material}

    def score(self, lm: Any, prepared: dict[str, Any], options: ScoreOptions) -> ProbeResult:
        start = time.perf_counter()
        pooling, batch = self.config.pooling, options.batch_tokens
        parts = [sentence_features(lm, e, batch, options.progress, pooling) for e in prepared["inputs"]]
        features = parts[0] if len(parts) == 1 else senteval_features(*parts)
        labels = prepared["labels"]
        predictions = cross_fitted_predictions(features, labels, prepared["folds"], self.config.c)
        correct = [int(p == y) for p, y in zip(predictions.tolist(), labels, strict=True)]
        mean, stderr, low, high = accuracy_interval(correct)
        return ProbeResult(
            self.config.name,
            "linear_probe",
            self.config.role,
            "acc",
            {"acc": Metric(mean, True, stderr, low, high)},
            len(labels),
            time.perf_counter() - start,
            {"acc": correct, "pred": predictions.tolist(), "gold": labels},
            scored=self.scored(len(labels)),
        )

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        d = paired_accuracy_delta(before.items["acc"], after.items["acc"])
        return [Comparison.paired(before, "acc", True, d, "linear probe on frozen features, cross-fitted")]
