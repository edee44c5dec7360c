"""Log-likelihoods of a multiple-choice item's continuations with the shared context computed once.

An item's requests (ARC: one question and four answers; Winogrande: two contexts that differ in one word and
one continuation) mostly repeat the same leading tokens. `grouped_loglikelihoods` runs those shared tokens once
per item and keeps their keys and values (a transformers `DynamicCache`), then runs only what follows them, one
row per choice, against that cache. The results are the plain path's (`scoring.loglikelihoods`) up to float
summation order: same truncation, same positions, same continuation tokens read.

Items of different prefix lengths share a batch: prefixes are right-padded (a causal model's outputs at a
position never depend on later tokens), and each choice row gets its own position ids (its prefix length onward)
and an attention mask that hides the padded tail of its prefix in the cache. Items where nothing would be
shared (one distinct input, e.g. BoolQ's one-token answers, which the plain path already scores in one pass)
and models without a plain `DynamicCache` go through `scoring.loglikelihoods`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from forgetless.probes.scoring import (
    Request,
    check_request,
    length_batches,
    loglikelihoods,
    model_input,
    read_scores,
)

MIN_SHARED = 2  # prefix tokens below which an item is scored by the plain path: nothing worth a second pass


@dataclass
class _Item:
    prefix: tuple[int, ...]  # the tokens every row of the item starts with, run once
    rows: dict[tuple[int, ...], list[int]]  # model input -> indices of the flat requests that read it


def _split(requests: list[Request], indices: list[int], max_length: int) -> _Item | None:
    """The item's shared prefix: the inputs' common leading tokens, stopping before the first position whose
    logits any request needs (so every row keeps at least one token). None when sharing gains nothing."""
    rows: dict[tuple[int, ...], list[int]] = {}
    for index in indices:
        rows.setdefault(model_input(requests[index], max_length), []).append(index)
    if len(rows) < 2:
        return None
    inputs = list(rows)
    limit = min(len(t) - max(len(requests[i].continuation) for i in rows[t]) for t in inputs)
    shared = 0
    while shared < limit and all(t[shared] == inputs[0][shared] for t in inputs):
        shared += 1
    return _Item(inputs[0][:shared], rows) if shared >= MIN_SHARED else None


def _cache_supported(cache: Any) -> bool:
    # Only plain full-attention layers: a sliding window or a quantized cache would store other positions.
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in getattr(cache, "layers", [None]))


@torch.inference_mode()
def grouped_loglikelihoods(
    model: Any,
    groups: list[list[Request]],
    *,
    max_length: int,
    batch_tokens: int = 4096,
    max_batch: int = 64,
    progress: Callable[[int], None] | None = None,
) -> list[list[tuple[float, bool]]]:
    """`scoring.loglikelihoods` for requests that come in groups (a multiple-choice item's choices), each
    group's shared leading tokens computed once. Returns one list of (log-likelihood, is_greedy) per group.

    Args:
        model: a causal LM taking `cache=` (a `DynamicCache`), `position_ids`, `attention_mask`.
        groups: the requests of each item, in order.
        max_length, batch_tokens, max_batch, progress: as for `scoring.loglikelihoods`; `batch_tokens` bounds
            both the prefixes of a batch (items x longest prefix) and each pass over their continuations.
    """
    requests = [r for group in groups for r in group]
    for index, request in enumerate(requests):
        check_request(index, request, max_length)
    items, plain, offset = [], [], 0
    for group in groups:
        indices = list(range(offset, offset + len(group)))
        offset += len(group)
        item = _split(requests, indices, max_length)
        if item is None:
            plain += indices
        else:
            items.append(item)
    results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    items.sort(key=lambda it: -len(it.prefix))
    for span in length_batches([len(item.prefix) for item in items], batch_tokens, max_batch):
        batch = items[span]
        if not _score_batch(model, requests, batch, results, batch_tokens, max_batch):
            plain += [i for item in items[span.start :] for rows in item.rows.values() for i in rows]
            break
        if progress is not None:
            progress(sum(len(rows) for item in batch for rows in item.rows.values()))
    if plain:
        scored = loglikelihoods(
            model,
            [requests[i] for i in plain],
            max_length=max_length,
            batch_tokens=batch_tokens,
            max_batch=max_batch,
            progress=progress,
        )
        for index, result in zip(plain, scored, strict=True):
            results[index] = result
    out, offset = [], 0
    for group in groups:
        out.append(results[offset : offset + len(group)])
        offset += len(group)
    return out


def _score_batch(
    model: Any,
    requests: list[Request],
    items: list[_Item],
    results: list[tuple[float, bool]],
    batch_tokens: int,
    max_batch: int,
) -> bool:
    """Run the items' prefixes once, then their rows against the cache. False (nothing written) when the
    model has no cache this can reuse."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    width = len(items[0].prefix)  # items come longest prefix first
    ids = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        ids[row, : len(item.prefix)] = torch.tensor(item.prefix)
    try:
        cache = DynamicCache(config=model.config)
        model(input_ids=ids.to(device), cache=cache, use_cache=True, logits_to_keep=1)
    except TypeError:  # a model without `cache=` / `logits_to_keep`
        return False
    if not _cache_supported(cache):
        return False
    layers = [(layer.keys, layer.values) for layer in cache.layers]  # each (items, kv heads, width, head dim)
    # Every continuation row, with the item it reads from; longest first so a pass pads little.
    rows = [(tokens, n, item) for n, item in enumerate(items) for tokens in item.rows]
    rows.sort(key=lambda r: (-(len(r[0]) - len(r[2].prefix)), r[0]))
    for span in length_batches([len(r[0]) - len(r[2].prefix) for r in rows], batch_tokens, max_batch):
        _score_rows(model, requests, rows[span], layers, width, results, device)
    return True


def _score_rows(
    model: Any,
    requests: list[Request],
    chunk: list[tuple[tuple[int, ...], int, _Item]],
    layers: list[tuple[torch.Tensor, torch.Tensor]],
    width: int,
    results: list[tuple[float, bool]],
    device: torch.device,
) -> None:
    from transformers import DynamicCache

    span = len(chunk[0][0]) - len(chunk[0][2].prefix)
    ids = torch.zeros((len(chunk), span), dtype=torch.long)
    positions = torch.zeros((len(chunk), span), dtype=torch.long)
    mask = torch.zeros((len(chunk), width + span), dtype=torch.long)  # cache columns, then this pass's
    spans = []
    for row, (tokens, _, item) in enumerate(chunk):
        shared, tail = len(item.prefix), tokens[len(item.prefix) :]
        ids[row, : len(tail)] = torch.tensor(tail)
        positions[row] = torch.arange(shared, shared + span)
        mask[row, :shared] = 1
        mask[row, width : width + len(tail)] = 1
        need = max(len(requests[i].continuation) for i in item.rows[tokens])
        spans.append((len(tail) - need, len(tail)))
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    select = torch.tensor([n for _, n, _ in chunk], device=device)
    cache = DynamicCache(ddp_cache_data=[(k.index_select(0, select), v.index_select(0, select)) for k, v in layers])
    keep = torch.arange(first, last, device=device)
    logits = model(
        input_ids=ids.to(device),
        position_ids=positions.to(device),
        attention_mask=mask.to(device),
        cache=cache,
        use_cache=True,
        logits_to_keep=keep,
    ).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
    for row, (tokens, _, item) in enumerate(chunk):
        end = len(tokens) - len(item.prefix) - first
        for index in item.rows[tokens]:
            results[index] = read_scores(logprobs[row], end, requests[index].continuation)
