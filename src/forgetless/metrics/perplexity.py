"""Perplexity, bits per byte, and paired before/after perplexity comparisons.

Inputs are summed negative log-likelihoods (NLL) in nats, i.e. ``-sum(log p)``
with natural logs, so they are >= 0. Lower perplexity is better, so a positive
delta or degradation means the model got worse (forgetting).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from forgetless.metrics.intervals import PairedDelta, _as_vector, _check_level
from forgetless.metrics.paired_tests import BOOTSTRAP_MIN, BootstrapLogRatioTest, LogRatioTest, data_seed


def _check_nll(nll_sum: float, name: str = "nll_sum") -> float:
    if not math.isfinite(nll_sum):
        raise ValueError(f"{name} must be finite, got {nll_sum!r}")
    if nll_sum < 0:
        # The usual mistake is passing a log-likelihood (<= 0) instead of its negation.
        raise ValueError(
            f"{name} must be >= 0 (a negative log-likelihood in nats), "
            f"got {nll_sum!r}; "
            "did you pass a log-likelihood instead of its negation?"
        )
    return float(nll_sum)


def _check_count(count: float, name: str) -> float:
    if not (math.isfinite(count) and count > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {count!r}")
    return float(count)


def perplexity(nll_sum: float, n_tokens: float) -> float:
    """Corpus perplexity ``exp(nll_sum / n_tokens)``.

    Args:
        nll_sum: Summed negative log-likelihood over all tokens, in nats (>= 0).
        n_tokens: Number of predicted tokens (> 0).
    """
    return math.exp(_check_nll(nll_sum) / _check_count(n_tokens, "n_tokens"))


def bits_per_byte(nll_sum: float, n_bytes: float) -> float:
    """Bits per UTF-8 byte ``nll_sum / (n_bytes * ln 2)``.

    Matches lm-evaluation-harness ``bits_per_byte``, which is
    ``-sum(loglik) / sum(bytes) / log(2)``.
    Unlike perplexity it does not depend on the tokenizer, so it compares models
    with different vocabularies.
    """
    return _check_nll(nll_sum) / (_check_count(n_bytes, "n_bytes") * math.log(2))


def perplexity_degradation(ppl_before: float, ppl_after: float) -> float:
    """Relative perplexity change ``ppl_after / ppl_before - 1``.

    Positive means worse (forgetting): 10 -> 12 gives 0.2, i.e. 20% higher perplexity.
    """
    before = _check_count(ppl_before, "ppl_before")
    return _check_count(ppl_after, "ppl_after") / before - 1.0


def _check_documents(
    nll_before: ArrayLike, nll_after: ArrayLike, tokens: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    before = _as_vector(nll_before, "nll_before")
    after = _as_vector(nll_after, "nll_after")
    tok = _as_vector(tokens, "tokens")
    if not (before.size == after.size == tok.size):
        raise ValueError(
            "nll_before, nll_after and tokens must have one entry per document: "
            f"got lengths {before.size}, {after.size}, {tok.size}"
        )
    if np.any(before < 0) or np.any(after < 0):
        raise ValueError("nll_before and nll_after must be >= 0 (negative log-likelihoods)")
    # Every document needs tokens, or a replicate drawing only empty ones is 0/0.
    if np.any(tok <= 0):
        raise ValueError("tokens must be > 0 for every document")
    return before, after, tok


def ratio_stderr(numerators: NDArray[np.float64], denominators: NDArray[np.float64]) -> float:
    """Standard error of sum(numerators) / sum(denominators) over documents (the delta method).

    A corpus score is a ratio of sums (nats over tokens), so documents are the sampling unit and a
    long document weighs more. Linearized: with R the ratio and e_i = x_i - R * t_i,
    se = sqrt(sum(e_i^2) * n / (n - 1)) / sum(t_i). nan for a single document.
    """
    n = numerators.size
    if n < 2:
        return float("nan")
    ratio = numerators.sum() / denominators.sum()
    residuals = numerators - ratio * denominators
    return float(math.sqrt(float(np.sum(residuals**2)) * n / (n - 1)) / denominators.sum())


def log_ratio_interval(
    nll: ArrayLike, counts: ArrayLike, level: float = 0.95
) -> tuple[float, float, float | None, float | None]:
    """sum(nll) / sum(counts) with its delta-method standard error and a Student-t interval.

    Returns (value, stderr, low, high); the interval is None for one document.
    """
    x, t = _as_vector(nll, "nll"), _as_vector(counts, "counts")
    value, stderr = float(x.sum() / t.sum()), ratio_stderr(x, t)
    if x.size < 2:
        return value, stderr, None, None
    q = float(stats.t.ppf((1.0 + _check_level(level)) / 2.0, x.size - 1))
    return value, stderr, value - q * stderr, value + q * stderr


def paired_perplexity_delta(
    nll_before: ArrayLike,
    nll_after: ArrayLike,
    tokens: ArrayLike,
    level: float = 0.95,
) -> PairedDelta:
    """Perplexity change on the same documents, from the per-document log-likelihood changes.

    ``before``/``after`` are corpus perplexities ``exp(sum(nll) / sum(tokens))``;
    ``delta = after - before`` (positive = worse); ``relative`` is the degradation
    ``after / before - 1``. The interval and the two-sided ``p_value`` come from one t statistic
    on ``log(after / before) = sum(nll_after - nll_before) / sum(tokens)`` with its delta-method
    standard error over documents, referred to Student's t below 20 documents
    (:class:`~forgetless.metrics.paired_tests.LogRatioTest`) and to its studentized bootstrap
    distribution from 20 (:class:`~forgetless.metrics.paired_tests.BootstrapLogRatioTest`), mapped
    to the perplexity scale; ``stderr`` is that of ``delta`` to first order.

    Args:
        nll_before: Per-document summed NLL in nats before training.
        nll_after: Per-document summed NLL after training, same documents and tokenizer.
        tokens: Per-document predicted-token counts (> 0).
        level: Interval coverage, strictly between 0 and 1.
    """
    before, after, tok = _check_documents(nll_before, nll_after, tokens)
    level = _check_level(level)
    ppl_before = perplexity(float(before.sum()), float(tok.sum()))
    ppl_after = perplexity(float(after.sum()), float(tok.sum()))
    diffs = after - before
    test: LogRatioTest = LogRatioTest(
        float(diffs.sum() / tok.sum()), ratio_stderr(diffs, tok), int(before.size), ppl_before
    )
    if before.size >= BOOTSTRAP_MIN and test.stderr > 0:  # robust tails for the budget's small levels
        seed = data_seed(before, after, tok)
        test = BootstrapLogRatioTest(
            test.log_ratio, test.stderr, test.n, ppl_before, tuple(diffs.tolist()), tuple(tok.tolist()), seed=seed
        )
    low, high = test.interval(level) if before.size > 1 else (float("nan"), float("nan"))
    return PairedDelta(
        before=ppl_before,
        after=ppl_after,
        delta=ppl_after - ppl_before,
        relative=perplexity_degradation(ppl_before, ppl_after),
        low=low,
        high=high,
        stderr=ppl_after * test.stderr,
        p_value=test.p_value(0.0),
        n=int(before.size),
        test=test.to_dict(),
    )


def degradation_interval(
    nll_before: ArrayLike,
    nll_after: ArrayLike,
    tokens: ArrayLike,
    level: float = 0.95,
) -> tuple[float, float]:
    """Interval of ``ppl_after / ppl_before - 1`` from the same test as :func:`paired_perplexity_delta`.

    Positive values mean worse perplexity.
    """
    d = paired_perplexity_delta(nll_before, nll_after, tokens, level)
    return d.low / d.before, d.high / d.before
