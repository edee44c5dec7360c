"""One lm-eval task's logged samples as a probe result, and the paired comparison of two runs' results.

The same measures forgetless's own probes report, computed from what lm-eval logged per document:

- every 0/1 per-document metric (acc, acc_norm, exact_match, ...): the paired accuracy change (Tango);
- multiple choice: the gold answer's log-probability normalized over the choices and its margin over
  the best wrong choice (`metrics.choice_measures`), from the choices' log-likelihoods in
  `filtered_resps`, when every item's gold index is known (from `target`, checked against `acc`);
- `loglikelihood_rolling`: word and byte perplexity from the per-document log-likelihoods and the
  word / byte counts lm-eval logged with them, paired per document (`paired_perplexity_delta`);
  bits per byte as information;
- `loglikelihood`: lm-eval's `perplexity`, exp of the mean negative log-likelihood per item.

Each aggregate equals lm-eval's own in its results file (tests/evaluation/test_lm_eval_samples.py).
The task's first metric that can be compared is its primary one (what verdicts and budgets use).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

from forgetless.evaluation.lm_eval_samples import IDENTITY, TaskSamples
from forgetless.metrics import (
    accuracy_interval,
    gold_logprobs,
    gold_margins,
    log_ratio_interval,
    paired_accuracy_delta,
    paired_mean_delta,
    paired_perplexity_delta,
)
from forgetless.probes import Comparison, Metric, ProbeResult

KIND = "lm_eval_samples"
# Per-document (loglikelihood, count) pairs, and what the count is.
ROLLING = {"word_perplexity": "words", "byte_perplexity": "bytes", "bits_per_byte": "bytes"}
UNITS_NOTE = {
    "word_perplexity": "lm-eval's word_perplexity: per whitespace-separated word",
    "byte_perplexity": "lm-eval's byte_perplexity: per UTF-8 byte",
    "perplexity": "lm-eval's perplexity: exp of the mean negative log-likelihood per item (not per token)",
}


def task_result(samples: TaskSamples, ids: list[int], metrics: list[str]) -> ProbeResult:
    """The task's scores on documents `ids`, for `metrics` (from `comparable_metrics`); items keep per-doc data."""
    docs = [samples.docs[i] for i in ids]
    items: dict[str, list[Any]] = {"doc_id": list(ids)}
    scores: dict[str, Metric] = {}
    for metric in metrics:
        better = samples.higher_is_better.get(metric, metric not in ROLLING and metric != "perplexity")
        if metric in ROLLING:
            unit = ROLLING[metric]
            items["nll"] = [-float(d[_source(d, metric)][0]) for d in docs]
            items[unit] = [float(d[_source(d, metric)][1]) for d in docs]
            scores[metric] = _ratio_metric(metric, items["nll"], items[unit], better)
        elif metric == "perplexity":
            items["nll"] = [-float(d["perplexity"]) for d in docs]
            scores[metric] = _ratio_metric(metric, items["nll"], [1.0] * len(docs), better)
        else:
            items[metric] = [int(float(d[metric])) for d in docs]
            mean, stderr, low, high = accuracy_interval(items[metric])
            scores[metric] = Metric(mean, better, stderr, low, high)
    if samples.output_type == "multiple_choice":
        items["lls"] = [_choice_lls(d) for d in docs]
        items["gold"] = [_gold(d, lls) for d, lls in zip(docs, items["lls"], strict=True)]
    identity = json.dumps([[d.get(k) for k in IDENTITY] for d in docs], sort_keys=True)
    return ProbeResult(
        samples.name,
        KIND,
        "general",
        metrics[0] if metrics else "",
        scores,
        len(ids),
        0.0,  # lm-eval logs no time per task
        items,
        items_key=hashlib.blake2b(identity.encode(), digest_size=16).hexdigest(),
        scored=samples.scored,
    )


def comparable_metrics(base: TaskSamples, tuned: TaskSamples, ids: list[int]) -> tuple[list[str], list[str]]:
    """(the metrics both runs logged that can be paired, primary first; a note per metric left out)."""
    first = base.docs[ids[0]]
    names = [m for m in first["metrics"] if m in tuned.docs[ids[0]]["metrics"]]
    if "bits_per_byte" in names and "byte_perplexity" not in names:
        names.append("byte_perplexity")  # the same log-likelihoods and bytes: derived, so a budget in % can bound it
    kept, notes = [], []
    for metric in names:
        if metric in ROLLING or metric == "perplexity" or _binary(metric, base, tuned, ids):
            kept.append(metric)
        else:
            notes.append(f"{base.name}: {metric} is not a 0/1 score per document; not compared")
    # A perplexity before bits per byte: bits per byte is shown for information, not judged.
    kept.sort(key=lambda m: m == "bits_per_byte")
    return kept, notes


def compare_results(before: ProbeResult, after: ProbeResult) -> tuple[list[Comparison], list[str]]:
    """Every paired comparison of one task (primary first) and a note on any measure left out."""
    out, notes = [], []
    for metric, score in before.metrics.items():
        if metric == "bits_per_byte":
            out.append(_info(before, after, metric))
        elif metric in ROLLING or metric == "perplexity":
            unit = ROLLING.get(metric)
            counts = before.items[unit] if unit else [1.0] * before.n_items
            d = paired_perplexity_delta(before.items["nll"], after.items["nll"], counts)
            ci = f" (95% CI {d.low / d.before:+.1%} to {d.high / d.before:+.1%})" if d.n > 1 else ""
            note = f"{UNITS_NOTE[metric]}; degradation {d.relative:+.1%}{ci}"
            out.append(Comparison.paired(before, metric, score.higher_is_better, d, note))
        else:
            d = paired_accuracy_delta(before.items[metric], after.items[metric])
            out.append(Comparison.paired(before, metric, score.higher_is_better, d))
    if "lls" in before.items:
        # Each run's samples may tell an item's gold (its acc says it); two that disagree tell nothing.
        pairs = zip(before.items["gold"], after.items["gold"], strict=True)
        gold = [b if a is None else a if b is None or a == b else None for b, a in pairs]
        unknown = sum(g is None for g in gold)
        if unknown:
            notes.append(f"{before.name}: the gold answer of {unknown} item(s) is unknown; no gold_logprob")
        else:
            for metric, measure, note in (
                ("gold_logprob", gold_logprobs, "gold answer's log-probability normalized over the choices, nats"),
                ("gold_margin", gold_margins, "gold answer's log-likelihood minus the best wrong choice's, nats"),
            ):
                d = paired_mean_delta(measure(before.items["lls"], gold), measure(after.items["lls"], gold))
                out.append(Comparison.paired(before, metric, True, d, note))
    return out, notes


def _source(doc: dict[str, Any], metric: str) -> str:
    """The logged field holding (loglikelihood, count) for `metric` (byte_perplexity may be derived)."""
    return "bits_per_byte" if metric == "byte_perplexity" and metric not in doc else metric


def _binary(metric: str, base: TaskSamples, tuned: TaskSamples, ids: list[int]) -> bool:
    for run in (base, tuned):
        for doc_id in ids:
            value = run.docs[doc_id].get(metric)
            if isinstance(value, list | dict | str) or value not in (0, 1):  # True/False count as 1/0
                return False
    return True


def _ratio_metric(metric: str, nll: list[float], counts: list[float], better: bool) -> Metric:
    """Corpus perplexity (or bits per byte) with its delta-method interval, as lm-eval aggregates it."""
    x, t = np.array(nll), np.array(counts)
    if metric == "bits_per_byte":
        value, stderr, low, high = log_ratio_interval(x / math.log(2), t)
        return Metric(value, better, stderr, low, high)
    log_value, log_se, low, high = log_ratio_interval(x, t)
    value = math.exp(log_value)
    if low is None or high is None:
        return Metric(value, better)
    return Metric(value, better, value * log_se, math.exp(low), math.exp(high))


def _info(before: ProbeResult, after: ProbeResult, metric: str) -> Comparison:
    b, a = before.metrics[metric].value, after.metrics[metric].value
    hib = before.metrics[metric].higher_is_better
    return Comparison(before.name, before.role, metric, hib, b, a, a - b, a / b - 1, None, None, None, 0, "info")


def _choice_lls(doc: dict[str, Any]) -> list[float]:
    """The choices' summed log-likelihoods; with acc_mutual_info the unconditional half is dropped."""
    lls = [float(r[0]) for r in doc["filtered_resps"]]
    if "acc_mutual_info" in doc["metrics"] and len(lls) % 2 == 0:
        lls = lls[: len(lls) // 2]
    return lls


def _gold(doc: dict[str, Any], lls: list[float]) -> int | None:
    """The gold choice's index, or None when the sample does not say it beyond doubt.

    lm-eval logs `target` as text: the gold index ("2"), or the gold choice's text, or for tasks with
    several contexts (Winogrande) the shared continuation. The index found is kept only if it agrees
    with lm-eval's own `acc` for the item; with two choices, `acc` alone also tells it.
    """
    requests = list(doc["arguments"].values())[: len(lls)]
    contexts = [r.get("arg_0") for r in requests]
    continuations = [str(r.get("arg_1", "")) for r in requests]
    target, found = str(doc.get("target", "")), None
    if len(set(contexts)) == 1:
        if target.isdigit():
            found = int(target) if int(target) < len(lls) else None
        else:
            hits = [i for i, c in enumerate(continuations) if c.endswith(target) and not c[: -len(target)].strip()]
            found = hits[0] if target and len(hits) == 1 else None
    acc = doc.get("acc")
    if acc not in (0, 1):
        return found
    best = int(np.argmax(lls))
    if found is not None:
        return found if (best == found) == bool(acc) else None
    if acc:
        return best
    return 1 - best if len(lls) == 2 else None
