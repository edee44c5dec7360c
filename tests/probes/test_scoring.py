"""The batched scoring engine against a plain one-request-at-a-time computation."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from forgetless.probes.scoring import Request, encode_pair, loglikelihoods, prefix_token_id


@pytest.fixture(scope="module")
def lm(tiny_model):  # noqa: ANN001, ANN201
    return AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)


def naive(model, request: Request) -> tuple[float, bool]:  # noqa: ANN001
    """Score one request alone, on its full sequence, with the full logits."""
    ids = torch.tensor([list(request.context + request.continuation)])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    cont = torch.tensor(request.continuation)
    rows = logprobs[-len(cont) :]
    return rows.gather(-1, cont[:, None]).sum().item(), bool((rows.argmax(-1) == cont).all())


def test_encode_pair_moves_trailing_space_into_continuation(lm) -> None:  # noqa: ANN001
    _, tok = lm
    a = encode_pair(tok, "The cat sees ", "a red ball")
    b = encode_pair(tok, "The cat sees", " a red ball")
    assert a == b
    assert list(a.context) == tok.encode("The cat sees")
    assert tok.decode(list(a.context + a.continuation)) == "The cat sees a red ball"


def test_empty_context_uses_prefix_token(lm) -> None:  # noqa: ANN001
    _, tok = lm
    request = encode_pair(tok, "", "The cat")
    assert request.context == (prefix_token_id(tok),) == (tok.bos_token_id,)
    assert list(request.continuation) == tok.encode("The cat")


def test_batched_scores_equal_one_at_a_time(lm) -> None:  # noqa: ANN001
    model, tok = lm
    pairs = [
        ("The cat sees", " a red ball"),
        ("A dog", " likes the old house."),
        ("Our team builds", " two small boats"),
        ("The river", " finds"),
        ("The river", " follows"),
        ("Question: What is it?\nAnswer:", " yes"),
    ]
    requests = [encode_pair(tok, c, x) for c, x in pairs]
    got = loglikelihoods(model, requests, max_length=128, batch_tokens=32)  # forces several batches
    for request, (score, greedy) in zip(requests, got, strict=True):
        ref_score, ref_greedy = naive(model, request)
        assert score == pytest.approx(ref_score, abs=1e-4)
        assert greedy == ref_greedy


def test_identical_inputs_share_one_forward(lm) -> None:  # noqa: ANN001
    model, tok = lm
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    try:
        requests = [encode_pair(tok, "Question: What is it?\nAnswer:", f" {c}") for c in "ABCD"]
        assert all(len(r.continuation) == 1 for r in requests)  # one-token answers
        scores = loglikelihoods(model, requests, max_length=128)
    finally:
        handle.remove()
    assert len(calls) == 1
    assert len({s for s, _ in scores}) == 4  # same logits, different answers read from them
    for request, (score, _) in zip(requests, scores, strict=True):
        assert score == pytest.approx(naive(model, request)[0], abs=1e-4)


def test_long_input_keeps_its_last_tokens(lm) -> None:  # noqa: ANN001
    model, tok = lm
    request = encode_pair(tok, "The cat sees a red ball. " * 20, "The dog")
    ((score, _),) = loglikelihoods(model, [request], max_length=16)
    window = (request.context + request.continuation)[-17:]
    trimmed = Request(window[: -len(request.continuation)], request.continuation)
    assert score == pytest.approx(naive(model, trimmed)[0], abs=1e-4)


def test_empty_continuation_is_an_error(lm) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="empty continuation"):
        loglikelihoods(lm[0], [Request((1, 2), ())], max_length=16)
