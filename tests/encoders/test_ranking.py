"""Rank metrics for embeddings: worked examples, agreement with SciPy, and the sign of a paired delta."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from forgetless.metrics import paired_spearman_delta, ranks, retrieval_hits, spearman, spearman_interval


def test_ranks_average_ties() -> None:
    assert ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_worked_example_and_scipy() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 200)  # 0/1 labels: many ties, as MRPC's paraphrase label
    scores = gold + rng.normal(0, 1.0, 200)
    assert spearman(gold, scores) == pytest.approx(spearmanr(gold, scores).statistic)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0  # constant: no ranking to agree with


def test_paired_spearman_delta_is_after_minus_before_with_an_interval() -> None:
    rng = np.random.default_rng(1)
    gold = rng.normal(size=300)
    good, worse = gold + rng.normal(0, 0.5, 300), gold + rng.normal(0, 2.0, 300)
    d = paired_spearman_delta(gold, good, worse)
    assert d.before == pytest.approx(spearman(gold, good)) and d.after == pytest.approx(spearman(gold, worse))
    assert d.delta < 0 and d.low <= d.delta <= d.high and d.high < 0  # clearly worse: the interval excludes 0
    same = paired_spearman_delta(gold, good, good)
    assert same.delta == 0 and same.low == 0 and same.high == 0
    low, high = spearman_interval(gold, good)
    assert low < spearman(gold, good) < high


def test_retrieval_hits_counts_ties_against_the_query() -> None:
    assert retrieval_hits([[0.9, 0.2], [0.8, 0.5]]).tolist() == [1, 0]
    assert retrieval_hits([[0.5, 0.5, 0.1]]).tolist() == [0]  # tied with a distractor: not found first
    assert retrieval_hits([[0.5, 0.6, 0.1]], k=2).tolist() == [1]
    with pytest.raises(ValueError, match="candidates >= queries"):
        retrieval_hits([[0.1], [0.2]])
