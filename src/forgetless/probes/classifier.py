"""Head accuracy: how often a classifier's own head predicts the gold label (the task a classifier is tuned for).

The model must have a sequence-classification head (`AutoModelForSequenceClassification`); texts and
pairs are encoded jointly as the head was trained (`[CLS] a [SEP] b [SEP]`), the prediction is the
arg-max logit. This is the target probe of `forgetless classify`: before tuning the head is fresh
(chance), after it is what was learned. Paired comparison: McNemar's test on per-item correctness.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field, model_validator

from forgetless.data.sources import load_records
from forgetless.errors import ForgetlessError
from forgetless.metrics import accuracy_interval, paired_accuracy_delta
from forgetless.models.encoder import has_classifier_head
from forgetless.probes.base import PROBES, Comparison, Metric, Probe, ProbeConfig, ProbeResult, ScoreOptions
from forgetless.probes.features import encode, forward_batches
from forgetless.probes.labelled import build_labelled, check_labels


class ClassifierConfig(ProbeConfig):
    kind: Literal["classifier"] = "classifier"
    text: str = Field("{{ sentence }}", description="template of the (first) text")
    text_pair: str | None = Field(None, description="template of the second text of a sentence pair")
    label: str = Field("{{ label }}", description="template of the class index (0..n-1)")
    max_length: int = Field(128, gt=1, description="tokens per example")
    primary: Literal["acc"] = "acc"

    @model_validator(mode="after")
    def _needs_source(self) -> ClassifierConfig:
        if not self.source:
            raise ValueError("a classifier probe needs `source` (a labelled data set)")
        return self


def _logits(outputs: Any, mask: Any) -> Any:
    return outputs.logits


@PROBES.register("classifier")
class ClassifierProbe(Probe):
    config_class = ClassifierConfig
    config: ClassifierConfig

    def prepare(self, tokenizer: Any) -> dict[str, Any]:
        cfg = self.config
        what = f"probe '{cfg.name}'"
        records = load_records(cfg.source, self.base_dir, what=what)
        data = build_labelled(records, self.sample(len(records)), cfg.text, cfg.text_pair, cfg.label, what)
        encodings = encode(tokenizer, data.texts, data.pairs, cfg.max_length)
        labels = data.labels or []
        return {"texts": encodings, "labels": labels, "material": {"inputs": encodings, "labels": labels}}

    def score(self, lm: Any, prepared: dict[str, Any], options: ScoreOptions) -> ProbeResult:
        start = time.perf_counter()
        num_labels = getattr(lm.model.config, "num_labels", None)
        if not has_classifier_head(lm.model):  # PEFT's wrapper is a PeftModelForSequenceClassification
            raise ForgetlessError(
                f"probe '{self.config.name}' reads a classification head, and {type(lm.model).__name__} has none",
                "score it on a model with a head (forgetless classify trains one), or use a linear_probe probe",
            )
        labels = prepared["labels"]
        check_labels(labels, num_labels, f"probe '{self.config.name}'")
        logits = forward_batches(lm, prepared["texts"], _logits, options.batch_tokens, options.progress)
        predictions = logits.argmax(axis=1).tolist()
        correct = [int(p == y) for p, y in zip(predictions, labels, strict=True)]
        mean, stderr, low, high = accuracy_interval(correct)
        return ProbeResult(
            self.config.name,
            "classifier",
            self.config.role,
            "acc",
            {"acc": Metric(mean, True, stderr, low, high)},
            len(labels),
            time.perf_counter() - start,
            {"acc": correct, "pred": predictions, "gold": labels},
            scored=self.scored(len(labels)),
        )

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        d = paired_accuracy_delta(before.items["acc"], after.items["acc"])
        return [Comparison.paired(before, "acc", True, d, "the model's own classification head")]
