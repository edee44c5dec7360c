"""Hand-worked checks for forgetless.metrics.perplexity."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from forgetless.metrics.perplexity import (
    bits_per_byte,
    degradation_interval,
    paired_perplexity_delta,
    perplexity,
    perplexity_degradation,
)

LN2 = math.log(2)


def test_perplexity_hand_example() -> None:
    # 4 tokens each with p = 1/8: nll = 4 ln 8, ppl = exp(ln 8) = 8.
    assert perplexity(4 * math.log(8), 4) == pytest.approx(8.0)
    assert perplexity(0.0, 10) == 1.0


def test_bits_per_byte_hand_examples() -> None:
    # 10 ln 2 nats = 10 bits over 5 bytes = 2 bits per byte.
    assert bits_per_byte(10 * LN2, 5) == pytest.approx(2.0)
    # lm-eval style: -sum(loglik) / sum(bytes) / log(2),
    # with logliks [-3, -1.5] and bytes [4, 2]
    # = 4.5 / 6 / ln 2 = 0.75 / ln 2 = 1.08202...
    assert bits_per_byte(4.5, 6) == pytest.approx(0.75 / LN2)
    assert bits_per_byte(4.5, 6) == pytest.approx(1.0820212806)


def test_perplexity_degradation() -> None:
    assert perplexity_degradation(10.0, 12.0) == pytest.approx(0.2)
    assert perplexity_degradation(10.0, 8.0) == pytest.approx(-0.2)


def test_paired_perplexity_delta_hand_example() -> None:
    # Two documents of 2 tokens. Before: p = 1/2 per token -> ppl 2.
    # After: p = 1/4 -> ppl 4. Every document changes by the same ln 2 per token, so the log ratio
    # has no spread: the interval collapses to 2 and the change is certain (p = 0).
    result = paired_perplexity_delta([2 * LN2, 2 * LN2], [4 * LN2, 4 * LN2], [2, 2])
    assert (result.before, result.after, result.delta) == pytest.approx((2.0, 4.0, 2.0))
    assert result.relative == pytest.approx(1.0)  # 4 / 2 - 1
    assert (result.low, result.high) == pytest.approx((2.0, 2.0))
    assert result.stderr == pytest.approx(0.0, abs=1e-12)
    assert result.p_value == 0.0
    assert result.n == 2


def test_paired_perplexity_delta_worked_example() -> None:
    # Three documents, tokens [2, 2, 4], per-document NLL change d = [0.2, 0.0, 0.4] nats.
    # log ratio R = 0.6 / 8 = 0.075; residuals d - R t = [0.05, -0.15, 0.1];
    # se = sqrt(0.035 * 3 / 2) / 8 = 0.0286410; t(2) 97.5% = 4.302653.
    before = np.array([2.0, 2.0, 4.0])
    result = paired_perplexity_delta(before, before + [0.2, 0.0, 0.4], [2, 2, 4])
    se, q = math.sqrt(0.035 * 3 / 2) / 8, 4.302653
    assert result.before == pytest.approx(math.e)
    assert result.relative == pytest.approx(math.expm1(0.075))
    assert result.low == pytest.approx(math.e * math.expm1(0.075 - q * se), abs=1e-6)
    assert result.high == pytest.approx(math.e * math.expm1(0.075 + q * se), abs=1e-6)
    assert result.test == pytest.approx(
        {"kind": "log_ratio", "log_ratio": 0.075, "stderr": se, "n": 3, "before": math.e}
    )


def test_corpus_perplexity_is_token_weighted() -> None:
    # nll [0, 4 ln 3] over tokens [1, 3]: exp(4 ln 3 / 4) = 3,
    # not a mean of per-document perplexities.
    result = paired_perplexity_delta([0.0, 4 * math.log(3)], [0.0, 4 * math.log(3)], [1, 3])
    assert result.before == pytest.approx(3.0)
    assert result.delta == pytest.approx(0.0)
    assert result.p_value == 1.0


def synthetic_docs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(50, 150, size=200)
    nll_before = tokens * rng.uniform(1.5, 2.5, size=200)
    # About 0.1 nats per token worse after training.
    nll_after = nll_before + tokens * rng.normal(0.1, 0.05, size=200)
    return nll_before, nll_after, tokens


def test_paired_perplexity_interval_contains_delta() -> None:
    nll_before, nll_after, tokens = synthetic_docs()
    result = paired_perplexity_delta(nll_before, nll_after, tokens)
    assert result.before == pytest.approx(math.exp(nll_before.sum() / tokens.sum()))
    assert result.low <= result.delta <= result.high
    assert result.low > 0 and result.stderr > 0
    assert result.p_value <= 2 / 10_001  # the bootstrap's smallest two-sided p: no replicate as extreme


def test_degradation_interval_contains_relative() -> None:
    nll_before, nll_after, tokens = synthetic_docs()
    result = paired_perplexity_delta(nll_before, nll_after, tokens)
    low, high = degradation_interval(nll_before, nll_after, tokens)
    assert low <= result.relative <= high
    assert (low, high) == pytest.approx((result.low / result.before, result.high / result.before))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: perplexity(1.0, 0), "n_tokens must be a finite number > 0"),
        (lambda: perplexity(-1.0, 4), "did you pass a log-likelihood"),
        (lambda: perplexity(float("nan"), 4), "nll_sum must be finite"),
        (lambda: bits_per_byte(1.0, 0), "n_bytes must be a finite number > 0"),
        (
            lambda: perplexity_degradation(0.0, 12.0),
            "ppl_before must be a finite number > 0",
        ),
        (
            lambda: perplexity_degradation(10.0, float("nan")),
            "ppl_after must be a finite",
        ),
        (
            lambda: paired_perplexity_delta([1.0], [1.0, 2.0], [3]),
            "one entry per document",
        ),
        (lambda: paired_perplexity_delta([], [], []), "nll_before is empty"),
        (lambda: paired_perplexity_delta([1.0], [-1.0], [3]), "must be >= 0"),
        (lambda: paired_perplexity_delta([1.0], [1.0], [0]), "tokens must be > 0"),
        (
            lambda: paired_perplexity_delta([1.0], [float("nan")], [3]),
            "nll_after contains NaN",
        ),
        (
            lambda: paired_perplexity_delta([1.0], [1.0], [3], level=1.5),
            "level must be",
        ),
        (lambda: degradation_interval([1.0, 2.0], [1.0, 2.0], [3, 3], level=0), "level must be"),
    ],
)
def test_value_errors(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
