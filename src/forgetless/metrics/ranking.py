"""Rank metrics for embeddings: Spearman correlation with gold similarity, retrieval recall@k.

Pure functions on arrays. Both are "higher is better". Spearman's rho is Pearson's correlation of
the ranks (ties get their average rank), in [-1, 1]; with 0/1 gold labels (paraphrase or not) it
measures how well the similarities separate the two classes. Recall@k: the share of queries whose
own partner is among the k most similar candidates.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from forgetless.metrics.intervals import (
    PairedDelta,
    _as_vector,
    _check_paired,
    bootstrap_indices,
    bootstrap_interval,
)
from forgetless.metrics.paired_tests import BOOTSTRAP_DRAWS, data_seed


def ranks(values: ArrayLike) -> NDArray[np.float64]:
    """1-based ranks, ties sharing their average rank: ranks([10, 20, 20, 5]) = [2, 3.5, 3.5, 1]."""
    x = _as_vector(values, "values")
    order = np.argsort(x, kind="mergesort")
    out = np.empty_like(x)
    out[order] = np.arange(1, x.size + 1, dtype=np.float64)
    unique, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=out, minlength=unique.size)
    counts = np.bincount(inverse, minlength=unique.size)
    return (sums / counts)[inverse]


def _pearson_rows(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """Pearson correlation of each row of a with the same row of b; 0 where either row is constant."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    num = (a * b).sum(axis=-1)
    return np.divide(num, denom, out=np.zeros_like(num, dtype=np.float64), where=denom > 0)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rank correlation of x and y; 0 when either is constant.

    Example: spearman([1, 2, 3, 4], [10, 20, 40, 30]) = 0.8.
    """
    a, b = _check_paired(x, y)
    return float(_pearson_rows(ranks(a), ranks(b)))


def _bootstrap_spearman(gold: NDArray, scores: NDArray, idx: NDArray, *more: NDArray) -> NDArray[np.float64]:
    """Spearman's rho of gold with each of `scores, *more` in every replicate (rows of `idx`): shape (k, B).
    Ranks are recomputed inside each replicate: a resample has its own ties and its own order."""
    out = []
    for rows in np.array_split(idx, max(1, len(idx) // 1000)):
        gold_ranks = stats.rankdata(gold[rows], axis=1)
        out.append([_pearson_rows(gold_ranks, stats.rankdata(s[rows], axis=1)) for s in (scores, *more)])
    return np.concatenate(out, axis=1)


def spearman_interval(
    gold: ArrayLike, scores: ArrayLike, n_boot: int = BOOTSTRAP_DRAWS, seed: int | None = None
) -> tuple[float, float]:
    """95% percentile bootstrap interval of spearman(gold, scores), resampling items (10,000 resamples; the
    seed, unless given, is the run's mixed with the data: metrics.resampling)."""
    g, s = _check_paired(gold, scores)
    seed = data_seed(g, s) if seed is None else seed
    return bootstrap_interval(_bootstrap_spearman(g, s, bootstrap_indices(g.size, n_boot, seed))[0])


def paired_spearman_delta(
    gold: ArrayLike,
    before: ArrayLike,
    after: ArrayLike,
    n_boot: int = BOOTSTRAP_DRAWS,
    seed: int | None = None,
    level: float = 0.95,
) -> PairedDelta:
    """Change of Spearman's rho with the same gold on the same items: after - before, paired bootstrap.

    Each replicate resamples items once and computes both correlations on that resample, so the
    items' shared difficulty cancels out of the delta. ``delta > 0``: the similarities rank better.
    10,000 resamples; the seed, unless given, is the run's mixed with the data (metrics.resampling).
    """
    g, b = _check_paired(gold, before)
    _, a = _check_paired(gold, after)
    seed = data_seed(g, b, a) if seed is None else seed
    idx = bootstrap_indices(g.size, n_boot, seed)
    rho_a_b = _bootstrap_spearman(g, a, idx, b)
    diffs = rho_a_b[0] - rho_a_b[1]
    low, high = bootstrap_interval(diffs, level)
    rho_b, rho_a = spearman(g, b), spearman(g, a)
    return PairedDelta(
        before=rho_b,
        after=rho_a,
        delta=rho_a - rho_b,
        relative=(rho_a - rho_b) / rho_b if rho_b != 0 else float("nan"),
        low=low,
        high=high,
        stderr=float(diffs.std(ddof=1)) if diffs.size > 1 else float("nan"),
        p_value=None,
        n=int(g.size),
    )


def retrieval_hits(similarity: ArrayLike, k: int = 1) -> NDArray[np.int64]:
    """Per query (row) 1 if its own candidate (the same column index) is among the k most similar, else 0.

    `similarity` is (Q, C) with C >= Q: query i's partner is candidate i; later columns are
    distractors. Ties count against the query: the partner is a hit when fewer than k other
    candidates score at least as high as it. Example: [[0.9, 0.2], [0.8, 0.5]] -> [1, 0] at k = 1.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[1] < sim.shape[0]:
        raise ValueError(f"similarity must be (queries, candidates) with candidates >= queries, got {sim.shape}")
    own = sim[np.arange(sim.shape[0]), np.arange(sim.shape[0])]
    better = (sim >= own[:, None]).sum(axis=1) - 1  # others scoring at least as high as the partner
    return (better < k).astype(np.int64)
