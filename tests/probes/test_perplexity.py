"""Perplexity: windows cover every token once; numbers equal a direct computation."""

from __future__ import annotations

import math

import pytest
import torch

from forgetless.models import load_model
from forgetless.probes import ScoreOptions
from forgetless.probes.perplexity import PerplexityConfig, PerplexityProbe, rolling_requests


@pytest.mark.parametrize(("n", "window", "stride"), [(1, 4, 4), (10, 4, 4), (10, 4, 2), (9, 3, 1), (5, 16, 16)])
def test_rolling_requests_score_every_token_once(n: int, window: int, stride: int) -> None:
    tokens = list(range(10, 10 + n))
    requests = rolling_requests(tokens, prefix=0, window=window, stride=stride)
    scored = [t for r in requests for t in r.continuation]
    assert scored == tokens
    for r in requests:
        assert len(r.context) + len(r.continuation) - 1 <= window  # the model input fits the window
    assert requests[0].context == (0,)  # the first token is predicted from the prefix token


def test_stride_gives_later_windows_more_context() -> None:
    requests = rolling_requests(list(range(1, 13)), prefix=0, window=4, stride=2)
    assert [len(r.context) for r in requests] == [1, 3, 3, 3, 3]
    assert requests[1].context == (2, 3, 4)  # tokens 5-6 are predicted after tokens 2-4


def direct_nll(model, tokenizer, text: str) -> tuple[float, int]:  # noqa: ANN001
    ids = [tokenizer.bos_token_id, *tokenizer.encode(text, add_special_tokens=False)]
    x = torch.tensor([ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(x).logits[0, :-1], -1)
    return -logprobs.gather(-1, x[0, 1:, None]).sum().item(), len(ids) - 1


def test_perplexity_equals_direct_computation(tiny_model, text_data) -> None:  # noqa: ANN001
    lm = load_model(str(tiny_model), device="cpu")
    probe = PerplexityProbe(PerplexityConfig(name="docs", source=str(text_data)))
    result = probe.score(lm, probe.prepare(lm.tokenizer), ScoreOptions(batch_tokens=64))
    texts = [line for line in text_data.read_text().splitlines()]
    import json

    totals = [direct_nll(lm.model, lm.tokenizer, json.loads(t)["text"]) for t in texts]
    nll, tokens = sum(t[0] for t in totals), sum(t[1] for t in totals)
    nbytes = sum(len(json.loads(t)["text"].encode()) for t in texts)
    assert result.metrics["perplexity"].value == pytest.approx(math.exp(nll / tokens), rel=1e-4)
    assert result.metrics["bits_per_byte"].value == pytest.approx(nll / nbytes / math.log(2), rel=1e-4)
    assert result.items["nll"] == pytest.approx([t[0] for t in totals], rel=1e-4)
    low, high = result.metrics["perplexity"].low, result.metrics["perplexity"].high
    assert low < result.metrics["perplexity"].value < high
    assert result.n_items == 16 and result.primary == "perplexity"


def test_windowed_scoring_is_close_to_full_context(tiny_model, text_data) -> None:  # noqa: ANN001
    lm = load_model(str(tiny_model), device="cpu")
    full = PerplexityProbe(PerplexityConfig(name="a", source=str(text_data)))
    windowed = PerplexityProbe(PerplexityConfig(name="b", source=str(text_data), max_length=16, stride=8))
    a = full.score(lm, full.prepare(lm.tokenizer), ScoreOptions()).metrics["perplexity"].value
    b = windowed.score(lm, windowed.prepare(lm.tokenizer), ScoreOptions()).metrics["perplexity"].value
    assert a != b  # less context for long documents changes the number...
    assert b == pytest.approx(a, rel=0.05)  # ...but a random tiny model barely uses context


def test_compare_same_model_is_kept_and_zero(tiny_model, text_data) -> None:  # noqa: ANN001
    lm = load_model(str(tiny_model), device="cpu")
    probe = PerplexityProbe(PerplexityConfig(name="docs", source=str(text_data)))
    result = probe.score(lm, probe.prepare(lm.tokenizer), ScoreOptions())
    ppl, bpb = probe.compare(result, result)
    assert (ppl.metric, ppl.delta, ppl.verdict, ppl.relative) == ("perplexity", 0.0, "kept", 0.0)
    assert ppl.higher_is_better is False and bpb.metric == "bits_per_byte"


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="needs `source`"):
        PerplexityConfig(name="x")
    with pytest.raises(ValueError, match="stride 8 must be <= max_length 4"):
        PerplexityConfig(name="x", source="a.txt", max_length=4, stride=8)
