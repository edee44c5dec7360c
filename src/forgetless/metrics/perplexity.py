"""Perplexity, bits per byte, and paired before/after perplexity comparisons.

Inputs are summed negative log-likelihoods (NLL) in nats, i.e. ``-sum(log p)``
with natural logs, so they are >= 0. Lower perplexity is better, so a positive
delta or degradation means the model got worse (forgetting).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from forgetless.metrics.intervals import (
    PairedDelta,
    _as_vector,
    bootstrap_indices,
    bootstrap_interval,
)


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


def _bootstrap_ppl(
    before: NDArray[np.float64],
    after: NDArray[np.float64],
    tokens: NDArray[np.float64],
    n_boot: int,
    seed: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Corpus perplexity before and after for each replicate (paired over documents).

    Memory is ``O(n_boot * n_documents)``: one index matrix plus three gathers.
    """
    idx = bootstrap_indices(before.size, n_boot, seed)
    # Perplexity is a ratio of sums, so documents are resampled (not tokens)
    # and the token count is recomputed per replicate.
    tok = tokens[idx].sum(axis=1)
    return np.exp(before[idx].sum(axis=1) / tok), np.exp(after[idx].sum(axis=1) / tok)


def paired_perplexity_delta(
    nll_before: ArrayLike,
    nll_after: ArrayLike,
    tokens: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedDelta:
    """Perplexity change on the same documents, with a paired bootstrap over documents.

    ``before``/``after`` are corpus perplexities ``exp(sum(nll) / sum(tokens))``;
    ``delta = after - before`` (positive = worse); ``relative`` is the
    degradation ``after / before - 1``. ``low``/``high`` is the percentile
    interval of ``delta``, ``stderr`` the standard deviation of the ``delta``
    replicates, and ``p_value`` the approximate two-sided bootstrap p-value
    ``min(1, 2 * min(P[rep <= 0], P[rep >= 0]))``; its resolution is
    ``1 / n_boot`` so 0.0 means "below that".

    Args:
        nll_before: Per-document summed NLL in nats before training.
        nll_after: Per-document summed NLL after training, same documents and tokenizer.
        tokens: Per-document predicted-token counts (> 0).
        n_boot: Number of bootstrap replicates.
        seed: Seed for the resampling, so intervals are reproducible.
        level: Interval coverage, strictly between 0 and 1.
    """
    before, after, tok = _check_documents(nll_before, nll_after, tokens)
    ppl_before = perplexity(float(before.sum()), float(tok.sum()))
    ppl_after = perplexity(float(after.sum()), float(tok.sum()))
    reps_before, reps_after = _bootstrap_ppl(before, after, tok, n_boot, seed)
    replicates = reps_after - reps_before
    low, high = bootstrap_interval(replicates, level)
    stderr = float(np.std(replicates, ddof=1)) if replicates.size > 1 else float("nan")
    p_value = min(1.0, 2.0 * min(np.mean(replicates <= 0), np.mean(replicates >= 0)))
    return PairedDelta(
        before=ppl_before,
        after=ppl_after,
        delta=ppl_after - ppl_before,
        relative=perplexity_degradation(ppl_before, ppl_after),
        low=low,
        high=high,
        stderr=stderr,
        p_value=float(p_value),
        n=int(before.size),
    )


def degradation_interval(
    nll_before: ArrayLike,
    nll_after: ArrayLike,
    tokens: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Paired bootstrap percentile interval of ``ppl_after / ppl_before - 1``.

    Uses the same resampling as :func:`paired_perplexity_delta` (same ``seed``
    gives the same replicates). Positive values mean worse perplexity.
    """
    before, after, tok = _check_documents(nll_before, nll_after, tokens)
    reps_before, reps_after = _bootstrap_ppl(before, after, tok, n_boot, seed)
    return bootstrap_interval(reps_after / reps_before - 1.0, level)
