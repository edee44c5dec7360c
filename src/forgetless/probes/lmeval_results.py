"""An lm_eval probe's per-item data -> its metrics and paired comparisons (no model, no task needed).

lm-eval turns each document's log-likelihoods into per-document values (`process_results`) and then
aggregates them. The values kept per item here are those an aggregation of one of these kinds reads,
which is what lets a subset of items, or a before/after pair, be scored again from `items` alone:

- `mean` (acc, acc_norm, exact_match...): a 0/1 or a number per document; a paired accuracy change
  (0/1) or a paired mean change (numbers).
- `perplexity` (loglikelihood tasks): the target's log-likelihood per document; exp(-mean).
- `weighted_perplexity` (word_perplexity, byte_perplexity) and `bits_per_byte`: (log-likelihood,
  words or bytes) per document; ratios of sums, paired on the log scale like probes/perplexity.py.

Values are computed by lm-eval's own aggregation functions; intervals by forgetless's metrics. Other
aggregations (f1, mcc, brier_score, custom functions) are not a function of per-item numbers that a
paired change can use; the probe leaves them out and lm-eval reports them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from forgetless.metrics import (
    accuracy_interval,
    log_ratio_interval,
    mean_stderr,
    normal_interval,
    paired_accuracy_delta,
    paired_mean_delta,
)
from forgetless.probes.base import Comparison, Metric, ProbeResult
from forgetless.probes.perplexity import perplexity_comparison

AGGREGATIONS = ("mean", "perplexity", "weighted_perplexity", "bits_per_byte")


def aggregation_names(task: Any) -> dict[str, str | None]:
    """{metric: the name of its lm-eval aggregation when it is one of AGGREGATIONS, else None}."""
    from lm_eval.api import metrics

    known = {getattr(metrics, name): name for name in AGGREGATIONS}
    return {metric: known.get(fn) for metric, fn in task.aggregation().items()}


def lm_eval_value(aggregation: str, values: list[Any]) -> float:
    """The metric as lm-eval aggregates it, from its per-document values (pairs as lists in JSON)."""
    from lm_eval.api import metrics

    fn: Callable[[list[Any]], float] = getattr(metrics, aggregation)
    return float(fn([tuple(v) if isinstance(v, list) else v for v in values]))


def metric_of(aggregation: str, values: list[Any], higher_is_better: bool) -> Metric:
    """The lm-eval value with a 95% interval over documents."""
    value = lm_eval_value(aggregation, values)
    if aggregation == "mean":
        if _binary(values):
            _, stderr, low, high = accuracy_interval(values)
        else:
            stderr = mean_stderr(values)
            low, high = normal_interval(value, stderr) if math.isfinite(stderr) else (None, None)
        return Metric(value, higher_is_better, stderr, low, high)
    nll, counts = _nll_counts(aggregation, values)
    scale = 1 / math.log(2) if aggregation == "bits_per_byte" else 1.0
    _, stderr, low, high = log_ratio_interval(nll * scale, counts)
    if low is None or high is None:
        return Metric(value, higher_is_better)
    if aggregation == "bits_per_byte":
        return Metric(value, higher_is_better, stderr, low, high)
    return Metric(value, higher_is_better, value * stderr, math.exp(low), math.exp(high))


def comparison_of(
    before: ProbeResult, after: ProbeResult, metric: str, aggregation: str, higher_is_better: bool
) -> Comparison:
    """The paired change of one lm-eval metric between two results on the same documents."""
    b, a = before.items[metric], after.items[metric]
    if aggregation == "mean":
        d = paired_accuracy_delta(b, a) if _binary(b) and _binary(a) else paired_mean_delta(b, a)
        return Comparison.paired(before, metric, higher_is_better, d)
    if aggregation == "bits_per_byte":  # a ratio of sums on a log scale already: reported, not tested
        vb, va = lm_eval_value(aggregation, b), lm_eval_value(aggregation, a)
        return Comparison(
            before.name, before.role, metric, False, vb, va, va - vb, va / vb - 1, None, None, None, len(b), "info"
        )
    # weighted or plain perplexity: probes/perplexity.py's paired test on exp(sum(nll) / sum(counts))
    (nll_b, counts), (nll_a, _) = _nll_counts(aggregation, b), _nll_counts(aggregation, a)
    as_docs = [
        dataclasses.replace(r, items={"nll": nll.tolist(), "counts": counts.tolist()})
        for r, nll in ((before, nll_b), (after, nll_a))
    ]
    return perplexity_comparison(as_docs[0], as_docs[1], metric, "counts")


def _binary(values: list[Any]) -> bool:
    return all(v in (0, 1) for v in values)


def _nll_counts(aggregation: str, values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per document: the negative log-likelihood and what it is divided by (1 for plain perplexity)."""
    if aggregation == "perplexity":
        return -np.array(values, dtype=float), np.ones(len(values))
    pairs = np.array(values, dtype=float).reshape(len(values), 2)
    return -pairs[:, 0], pairs[:, 1]
