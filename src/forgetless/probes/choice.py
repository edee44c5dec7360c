"""Multiple choice by log-likelihood, scored as lm-evaluation-harness scores `multiple_choice` tasks.

Each choice is a continuation of the item's context; the prediction is the choice with the highest
summed log-likelihood (`acc`), or the highest log-likelihood per character of the choice text
(`acc_norm`: lm-eval 0.4 divides by `len(choice)`, characters) or per UTF-8 byte (`acc_bytes`).
Items may instead give several contexts and one continuation (Winogrande's partial scoring).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import model_validator

from forgetless.data.sources import load_records
from forgetless.errors import ForgetlessError
from forgetless.metrics import accuracy_interval, gold_logprobs, gold_margins, paired_accuracy_delta, paired_mean_delta
from forgetless.probes.base import PROBES, Comparison, Metric, Probe, ProbeConfig, ProbeResult, ScoreOptions
from forgetless.probes.scoring import Request, encode_pair, model_max_length
from forgetless.probes.shared_context import grouped_loglikelihoods
from forgetless.probes.templates import render

METRICS = ("acc", "acc_norm", "acc_bytes")


class ChoiceConfig(ProbeConfig):
    """Templates are Jinja over the item's fields; `choices`/`contexts` render to lists, `gold` to an
    index (or to the text of the right choice)."""

    kind: Literal["choice"] = "choice"
    context: str | None = None
    choices: str | None = None
    contexts: str | None = None
    continuation: str | None = None
    gold: str
    target_delimiter: str = " "
    primary: Literal["acc", "acc_norm", "acc_bytes"] = "acc"

    @model_validator(mode="after")
    def _one_layout(self) -> ChoiceConfig:
        if not self.source:
            raise ValueError("a choice probe needs `source`")
        if bool(self.context and self.choices) == bool(self.contexts and self.continuation):
            raise ValueError("give either `context` and `choices`, or `contexts` and `continuation`")
        return self


@dataclass
class ChoiceItem:
    requests: list[tuple[str, str]]  # (context, continuation) per choice
    lengths: list[str]  # the texts whose length normalizes acc_norm / acc_bytes
    gold: int


@PROBES.register("choice")
class ChoiceProbe(Probe):
    config_class = ChoiceConfig
    config: ChoiceConfig

    def build_items(self) -> list[ChoiceItem]:
        cfg = self.config
        records = load_records(cfg.source, self.base_dir, what=f"probe '{cfg.name}'")
        items = []
        for index in self.sample(len(records)):
            record, where = records[index], f"probe '{cfg.name}', item {index}"
            if cfg.context is not None:
                context = render(cfg.context, record, native=False, where=where)
                choices = render(cfg.choices, record, native=True, where=where)
                _check_list(choices, "choices", where, record)
                pairs = [(context, cfg.target_delimiter + str(c)) for c in choices]
                lengths = [str(c) for c in choices]
            else:
                contexts = render(cfg.contexts, record, native=True, where=where)
                _check_list(contexts, "contexts", where, record)
                continuation = render(cfg.continuation, record, native=False, where=where)
                pairs = [(str(c), cfg.target_delimiter + continuation) for c in contexts]
                lengths = [str(c) for c in contexts]
            gold = render(cfg.gold, record, native=True, where=where)
            items.append(ChoiceItem(pairs, lengths, _gold_index(gold, lengths, where)))
        return items

    def prepare(self, tokenizer: Any) -> dict[str, Any]:
        items = self.build_items()
        requests = [encode_pair(tokenizer, c, x) for item in items for c, x in item.requests]
        material = {
            "requests": [[r.context, r.continuation] for r in requests],
            "gold": [i.gold for i in items],
            "lengths": [i.lengths for i in items],
        }
        return {"items": items, "requests": requests, "material": material}

    def score(self, lm: Any, prepared: dict[str, Any], options: ScoreOptions) -> ProbeResult:
        start = time.perf_counter()
        items: list[ChoiceItem] = prepared["items"]
        requests: list[Request] = prepared["requests"]
        max_length = options.max_length or model_max_length(lm.model)
        groups, offset = [], 0
        for item in items:  # an item's choices share their context: computed once (shared_context.py)
            groups.append(requests[offset : offset + len(item.requests)])
            offset += len(item.requests)
        scored = grouped_loglikelihoods(
            lm.model, groups, max_length=max_length, batch_tokens=options.batch_tokens, progress=options.progress
        )
        per_item: dict[str, list[Any]] = {"lls": [], "gold": [], "pred": [], **{m: [] for m in METRICS}}
        for item, item_scores in zip(items, scored, strict=True):
            lls = np.array([ll for ll, _ in item_scores])
            chars = np.array([float(len(t)) for t in item.lengths])
            nbytes = np.array([float(len(t.encode("utf-8"))) for t in item.lengths])
            preds = {"acc": np.argmax(lls), "acc_norm": np.argmax(lls / chars), "acc_bytes": np.argmax(lls / nbytes)}
            per_item["lls"].append(lls.tolist())
            per_item["gold"].append(item.gold)
            per_item["pred"].append(int(preds["acc"]))
            for metric, pred in preds.items():
                per_item[metric].append(int(pred == item.gold))
        return self.from_items(per_item, time.perf_counter() - start)

    def subset(self, prepared: dict[str, Any], indices: list[int]) -> dict[str, Any]:
        items: list[ChoiceItem] = prepared["items"]
        offsets = np.cumsum([0] + [len(item.requests) for item in items]).tolist()
        rows = [row for i in indices for row in range(offsets[i], offsets[i + 1])]
        material = prepared["material"]
        return {
            "items": [items[i] for i in indices],
            "requests": [prepared["requests"][row] for row in rows],
            "material": {
                "requests": [material["requests"][row] for row in rows],
                "gold": [material["gold"][i] for i in indices],
                "lengths": [material["lengths"][i] for i in indices],
            },
        }

    def from_items(self, items: dict[str, list[Any]], seconds: float) -> ProbeResult:
        metrics = {}
        for metric in METRICS:
            mean, stderr, low, high = accuracy_interval(items[metric])
            metrics[metric] = Metric(mean, True, stderr, low, high)
        cfg = self.config
        n = len(items["gold"])
        return ProbeResult(cfg.name, "choice", cfg.role, cfg.primary, metrics, n, seconds, items, scored=self.scored(n))

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        metrics = [self.config.primary] + [m for m in METRICS if m != self.config.primary]
        out = []
        for metric in metrics:
            d = paired_accuracy_delta(before.items[metric], after.items[metric])
            out.append(Comparison.paired(before, metric, True, d))
        return out + gold_comparisons(before, after)


def gold_comparisons(before: ProbeResult, after: ProbeResult) -> list[Comparison]:
    """gold_logprob and gold_margin, paired per item from the results' `lls` (each choice's summed
    log-likelihood) and `gold` (the right choice's index): every multiple-choice probe reports them."""
    # Per-item log-probability measures: an answer's probability falls long before it flips, so
    # these see a change with fewer items than accuracy does (bench/RESULTS.md, "Verdicts").
    gold, out = before.items["gold"], []
    for metric, measure, note in (
        ("gold_logprob", gold_logprobs, "gold answer's log-probability normalized over the choices, nats"),
        ("gold_margin", gold_margins, "gold answer's log-likelihood minus the best wrong choice's, nats"),
    ):
        d = paired_mean_delta(measure(before.items["lls"], gold), measure(after.items["lls"], gold))
        out.append(Comparison.paired(before, metric, True, d, note))
    return out


def _check_list(value: Any, field: str, where: str, record: dict[str, Any]) -> None:
    if not isinstance(value, list) or len(value) < 2:
        raise ForgetlessError(
            f"{where}: `{field}` rendered to {value!r}, not a list of two or more options",
            f"make `{field}` render a list: '{{{{ [option_a, option_b] }}}}' from two fields, or "
            f"'{{{{ choices.text }}}}' from a list field; the item's fields are: {', '.join(sorted(record))}",
        )


def _gold_index(gold: Any, options: list[str], where: str) -> int:
    if isinstance(gold, str) and not gold.lstrip("-").isdigit():
        if gold not in options:
            raise ForgetlessError(f"{where}: gold answer {gold!r} is not among the choices {options}", "fix `gold`")
        return options.index(gold)
    try:
        index = int(gold)
    except (TypeError, ValueError) as error:
        raise ForgetlessError(f"{where}: gold {gold!r} is not an index", "make `gold` render to an int") from error
    if not 0 <= index < len(options):
        raise ForgetlessError(f"{where}: gold index {index} is out of range for {len(options)} choices", "fix `gold`")
    return index
