"""Batched log-likelihood of continuations given contexts, the way lm-evaluation-harness scores them.

Every probe that needs log-likelihoods (multiple choice, perplexity) turns its items into
(context tokens, continuation tokens) requests and calls `loglikelihoods` once, so batching,
sorting and the sharing of identical inputs happen in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

DEFAULT_MAX_LENGTH = 2048  # caps memory; documents longer than this are scored in windows
PAD_SLACK = 0.1
MIN_BATCH_TOKENS = 256


@dataclass(frozen=True)
class Request:
    context: tuple[int, ...]
    continuation: tuple[int, ...]


def prefix_token_id(tokenizer: Any) -> int:
    """The token an empty context is replaced by (lm-eval: BOS if the tokenizer has one, else EOS)."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_pair(tokenizer: Any, context: str, continuation: str) -> Request:
    """Tokenize as lm-eval 0.4 does: trailing spaces of the context move into the continuation,
    the whole string is encoded once and split after the context's tokens."""
    if context == "":
        cont = tokenizer.encode(continuation, add_special_tokens=False)
        prefix = prefix_token_id(tokenizer)
        if cont and cont[0] == prefix:
            return Request(tuple(cont[:1]), tuple(cont[1:]))
        return Request((prefix,), tuple(cont))
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer.encode(context + continuation)
    ctx = tokenizer.encode(context)
    return Request(tuple(ctx), tuple(whole[len(ctx) :]))


def model_max_length(model: Any, cap: int = DEFAULT_MAX_LENGTH) -> int:
    config = getattr(model, "config", None)
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return min(value, cap)
    return cap


def _forward_logits(model: Any, input_ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Logits at the positions in `keep` only: the LM head and softmax over a 50k vocabulary are a
    large share of the cost, and only continuation positions are needed."""
    try:
        return model(input_ids=input_ids, logits_to_keep=keep, use_cache=False).logits
    except TypeError:  # models without `logits_to_keep`
        return model(input_ids=input_ids, use_cache=False).logits[:, keep]


def check_request(index: int, request: Request, max_length: int) -> None:
    if not request.continuation:
        raise ValueError(f"request {index} has an empty continuation: nothing to score")
    if len(request.continuation) > max_length:
        raise ValueError(f"request {index}: continuation of {len(request.continuation)} tokens > max_length")


def model_input(request: Request, max_length: int) -> tuple[int, ...]:
    """The tokens the model reads: context + continuation without its last token, left-truncated as lm-eval
    does (the last max_length + 1 tokens of the whole sequence)."""
    return (request.context + request.continuation)[-(max_length + 1) : -1]


def read_scores(logprobs: torch.Tensor, end: int, continuation: tuple[int, ...]) -> tuple[float, bool]:
    """(summed log-probability, is greedy) of `continuation` from one row's log-probabilities (positions,
    vocab), whose row `end - 1` predicts its last token."""
    cont = torch.tensor(continuation)
    rows = logprobs[end - len(cont) : end]
    return rows.gather(-1, cont.unsqueeze(-1)).sum().item(), bool((rows.argmax(-1) == cont).all())


def length_batches(lengths: list[int], batch_tokens: int, max_batch: int) -> list[slice]:
    """Consecutive batches of rows sorted longest first, each padded to its first row's length: at most
    `batch_tokens` padded tokens and `max_batch` rows, and a batch ends early where the next row is over
    PAD_SLACK shorter than its first, once it holds MIN_BATCH_TOKENS real tokens: a padded token costs as
    much as a real one, while past a few hundred tokens a larger batch is hardly cheaper per token."""
    batches, start = [], 0
    while start < len(lengths):
        width = max(lengths[start], 1)
        size = max(1, min(max_batch, batch_tokens // width))
        end, real = start + 1, lengths[start]
        while end < min(start + size, len(lengths)):
            if lengths[end] < width * (1 - PAD_SLACK) and real >= MIN_BATCH_TOKENS:
                break
            real += lengths[end]
            end += 1
        batches.append(slice(start, end))
        start = end
    return batches


@torch.inference_mode()
def loglikelihoods(
    model: Any,
    requests: list[Request],
    *,
    max_length: int,
    batch_tokens: int = 4096,
    max_batch: int = 64,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[float, bool]]:
    """Sum of log-probabilities of each continuation given its context, and whether it is greedy.

    Inputs longer than `max_length` keep their last tokens (lm-eval's left truncation). Requests
    whose model input is identical (e.g. one-token answers " A"/" B" after the same question) share
    one forward pass. Inputs are sorted longest first, batched by `length_batches` and right-padded; no
    attention mask is needed because a causal model's outputs at a position never depend on later (pad)
    tokens.
    """
    device = next(model.parameters()).device
    inputs: dict[tuple[int, ...], list[int]] = {}  # model input -> indices of requests that share it
    for index, request in enumerate(requests):
        check_request(index, request, max_length)
        inputs.setdefault(model_input(request, max_length), []).append(index)
    order = sorted(inputs, key=lambda tokens: (-len(tokens), tokens))
    results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    for rows in length_batches([len(t) for t in order], batch_tokens, max_batch):
        batch = order[rows]
        width = len(batch[0])
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = torch.tensor(tokens)
        # Positions whose logits any request of this batch needs: the last len(cont) of each input.
        spans = [(len(t) - max(len(requests[i].continuation) for i in inputs[t]), len(t)) for t in batch]
        first = max(0, min(s for s, _ in spans))
        last = max(e for _, e in spans)
        keep = torch.arange(first, last, device=device)
        logits = _forward_logits(model, ids.to(device), keep).float()
        logprobs = torch.log_softmax(logits, dim=-1).cpu()
        for row, tokens in enumerate(batch):
            for index in inputs[tokens]:
                results[index] = read_scores(logprobs[row], len(tokens) - first, requests[index].continuation)
        if progress is not None:
            progress(sum(len(inputs[t]) for t in batch))
    return results
