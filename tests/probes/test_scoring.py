"""The batched scoring engine against a plain one-request-at-a-time computation."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from forgetless.probes.scoring import Request, encode_pair, length_batches, loglikelihoods, prefix_token_id
from forgetless.probes.shared_context import grouped_loglikelihoods


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


def test_length_batches_cut_where_padding_would_grow() -> None:
    # 300 tokens fill a batch's minimum; 90 is within 10% of 100; 80 is not, so it starts a new batch.
    lengths = [100, 100, 100, 90, 80, 80, 20]
    assert length_batches(lengths, batch_tokens=4096, max_batch=64) == [slice(0, 4), slice(4, 7)]
    assert length_batches(lengths, batch_tokens=250, max_batch=64) == [slice(0, 2), slice(2, 4), slice(4, 7)]
    assert length_batches([5] * 5, batch_tokens=4096, max_batch=2) == [slice(0, 2), slice(2, 4), slice(4, 5)]


def mixed_groups(tok) -> list[list[Request]]:  # noqa: ANN001
    """Items as the choice probe builds them: shared contexts of different lengths, 2 and 4 choices,
    multi-token continuations, Winogrande's two contexts and one continuation, an empty context, a
    context longer than max_length (32 below), one-token answers, a single-choice item."""
    long = "The farmer finds the old house. " * 8
    items = [
        ("The cat sees", [" a red ball", " the old house today", " two small boats", " the blue sky"]),
        ("A dog", [" likes the old house.", " finds"]),
        ("Question: What is it?\nAnswer:", [" some green apples", " a long road on the river"]),
        (long, [" The cat sees a red ball", " A dog"]),
        ("", [" The cat sees", " A dog likes the old house"]),
        ("Question: What is it?\nAnswer:", [" A", " B", " C", " D"]),
        ("Our team builds", [" two small boats"]),
    ]
    groups = [[encode_pair(tok, c, x) for x in choices] for c, choices in items]
    groups.append(
        [encode_pair(tok, f"My friend paints and {who}", " watches the blue sky") for who in ("the cat", "a bird")]
    )
    return groups


def test_shared_context_equals_plain_path(lm) -> None:  # noqa: ANN001
    model, tok = lm
    groups = mixed_groups(tok)
    assert len(groups[3][0].context) > 32  # truncated to max_length below
    passes = []
    handle = model.register_forward_pre_hook(
        lambda _, args, kwargs: passes.append((kwargs.get("attention_mask"), kwargs.get("position_ids"))),
        with_kwargs=True,
    )
    try:
        shared = grouped_loglikelihoods(model, groups, max_length=32, batch_tokens=64)
    finally:
        handle.remove()
    requests = [r for g in groups for r in g]
    plain = loglikelihoods(model, requests, max_length=32, batch_tokens=64)
    assert [len(s) for s in shared] == [len(g) for g in groups]
    for (score, greedy), (ref_score, ref_greedy) in zip([s for g in shared for s in g], plain, strict=True):
        assert score == pytest.approx(ref_score, abs=1e-4)
        assert greedy == ref_greedy
    # The packed path ran, with several items in one pass: position ids restart at 0 for every item.
    packed = [pos[0] for mask, pos in passes if mask is not None and mask.dim() == 4]
    assert packed and max(int((pos == 0).sum()) for pos in packed) >= 2
    long = groups[3][0]
    window = (long.context + long.continuation)[-33:]
    trimmed = Request(window[: -len(long.continuation)], long.continuation)
    assert shared[3][0][0] == pytest.approx(naive(model, trimmed)[0], abs=1e-4)


def test_shared_context_runs_each_context_once(lm) -> None:  # noqa: ANN001
    model, tok = lm
    context = "Question: What is it?\nAnswer: " + "The cat sees a red ball. " * 3
    groups = [[encode_pair(tok, context, x) for x in (" a red ball", " the old house", " two small boats")]]
    grouped_loglikelihoods(model, groups, max_length=128)  # the once-per-model check of the packed path
    tokens = []
    handle = model.register_forward_pre_hook(
        lambda _, args, kwargs: tokens.append(kwargs["input_ids"].numel()), with_kwargs=True
    )
    try:
        shared = grouped_loglikelihoods(model, groups, max_length=128)
    finally:
        handle.remove()
    n_context = len(groups[0][0].context)
    assert sum(tokens) < n_context + sum(len(r.continuation) + 1 for r in groups[0]) + 3  # not 3 contexts
    for request, (score, greedy) in zip(groups[0], shared[0], strict=True):
        ref_score, ref_greedy = naive(model, request)
        assert score == pytest.approx(ref_score, abs=1e-4)
        assert greedy == ref_greedy


class NoMask(torch.nn.Module):
    """A causal LM that takes no position ids or attention mask: the shared path must fall back."""

    def __init__(self, model) -> None:  # noqa: ANN001
        super().__init__()
        self.inner, self.config = model, model.config

    def forward(self, input_ids, logits_to_keep=None, use_cache=False):  # noqa: ANN001, ANN201
        return self.inner(input_ids=input_ids, logits_to_keep=logits_to_keep, use_cache=False)


class IgnoresMask(NoMask):
    """Takes a 4D mask and position ids and silently ignores them: the once-per-model check must catch it."""

    def forward(self, input_ids, logits_to_keep=None, use_cache=False, **ignored):  # noqa: ANN001, ANN003, ANN201
        return self.inner(input_ids=input_ids, logits_to_keep=logits_to_keep, use_cache=False)


@pytest.mark.parametrize("wrapper", [NoMask, IgnoresMask])
def test_shared_context_falls_back_to_the_plain_path(lm, wrapper) -> None:  # noqa: ANN001
    model, tok = lm
    groups = mixed_groups(tok)
    got = grouped_loglikelihoods(wrapper(model), groups, max_length=32, batch_tokens=64)
    want = loglikelihoods(model, [r for g in groups for r in g], max_length=32, batch_tokens=64)
    for (score, greedy), (ref_score, ref_greedy) in zip([s for g in got for s in g], want, strict=True):
        assert score == pytest.approx(ref_score, abs=1e-4)
        assert greedy == ref_greedy


def test_answers_that_begin_alike_share_their_first_tokens(lm) -> None:  # noqa: ANN001
    """PIQA's two solutions often begin with the same words: the token tree holds them once, and every
    continuation is still scored as the plain path scores it."""
    model, tok = lm
    context = "Question: What does the farmer do?\nAnswer:"
    answers = (" The farmer finds the old house", " The farmer finds the blue sky", " A dog")
    groups = [[encode_pair(tok, context, x) for x in answers]]
    grouped_loglikelihoods(model, groups, max_length=128)  # the once-per-model check of the packed path
    lengths = []
    handle = model.register_forward_pre_hook(
        lambda _, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        shared = grouped_loglikelihoods(model, groups, max_length=128)
    finally:
        handle.remove()
    inputs = {(r.context + r.continuation)[:-1] for r in groups[0]}
    distinct = {t[:k] for t in inputs for k in range(1, len(t) + 1)}  # the trie's tokens
    common = len(tok(context + " The farmer finds the")["input_ids"]) - len(tok(context)["input_ids"])
    assert common >= 4  # the first two answers share their first words beyond the context
    assert lengths == [len(distinct)]  # one pass over the trie, shared answer words once
    for request, (score, greedy) in zip(groups[0], shared[0], strict=True):
        ref_score, ref_greedy = naive(model, request)
        assert score == pytest.approx(ref_score, abs=1e-4)
        assert greedy == ref_greedy
