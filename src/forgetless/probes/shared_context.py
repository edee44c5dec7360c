"""Log-likelihoods of a multiple-choice item's continuations with the shared context computed once, unpadded.

An item's requests (ARC: one question and four answers; Winogrande: two contexts that differ in one word and
one continuation; PIQA: two solutions that often begin with the same words) mostly repeat the same leading
tokens. `grouped_loglikelihoods` lays each item out as a token tree (a trie of its inputs: every token that
several inputs begin with, once) and packs the trees of many items end to end into one sequence per forward
pass, with an attention mask that lets a token see only itself and the tokens it follows, and position ids
that are each token's position in its inputs. The results are the plain path's (`scoring.loglikelihoods`) up
to float summation order: same truncation, same positions, same continuation tokens read.

Why packed rather than padded batches: on Winogrande a row after the shared context is about 6 tokens, so
padding to a batch's longest row wasted a quarter of the tokens, while many small passes each reread every
weight (a fixed cost per pass). A pack has no padding and holds up to PACK_TOKENS tokens; its attention is
computed over the whole pack, masked, so longer packs waste attention on pairs of different items (at 512
tokens, about a tenth of a 135M model's matrix products). Measured in bench/RESULTS.md.

Items where nothing would be shared (one distinct input, e.g. BoolQ's one-token answers, which the plain path
already scores in one pass), items longer than the model's sliding window, and models that do not take a
custom 4D mask with position ids (checked once per model against the plain path) go through
`scoring.loglikelihoods`.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from forgetless.probes.scoring import Request, check_request, loglikelihoods, model_input, read_scores

MIN_SHARED = 2  # tokens the tree must save, or the item is scored by the plain path: nothing worth sharing
PACK_TOKENS = 512  # tokens per packed pass, unless batch_tokens is smaller (see the module docstring)
AGREE = 1e-3  # nats: the packed and plain paths on one item, checked once per model (float order: ~1e-5)
_PACKS_WORK: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> packed path checked to agree


@dataclass
class _Item:
    """An item's inputs as one token tree: tokens that several inputs begin with are stored once (the context,
    and the first words of answers that begin alike), each token after the one it follows."""

    tokens: list[int]
    parents: list[int]  # the index in `tokens` of each token's predecessor, -1 for the first token
    paths: dict[tuple[int, ...], list[int]]  # model input -> its tokens' indices in `tokens`
    rows: dict[tuple[int, ...], list[int]]  # model input -> indices of the flat requests that read it

    @property
    def size(self) -> int:
        """Tokens the item takes in a pack."""
        return len(self.tokens)

    @property
    def longest(self) -> int:
        return max(len(t) for t in self.rows)


def _split(requests: list[Request], indices: list[int], max_length: int) -> _Item | None:
    """The item's token tree (a trie of its model inputs). None when it saves fewer than MIN_SHARED tokens."""
    rows: dict[tuple[int, ...], list[int]] = {}
    for index in indices:
        rows.setdefault(model_input(requests[index], max_length), []).append(index)
    if len(rows) < 2:
        return None
    node_of: dict[tuple[int, int], int] = {}  # (predecessor, token) -> index in tokens
    tokens: list[int] = []
    parents: list[int] = []
    paths: dict[tuple[int, ...], list[int]] = {}
    for inputs in rows:
        node, path = -1, []
        for token in inputs:
            if (node, token) not in node_of:
                node_of[node, token] = len(tokens)
                tokens.append(token)
                parents.append(node)
            node = node_of[node, token]
            path.append(node)
        paths[inputs] = path
    if sum(map(len, rows)) - len(tokens) < MIN_SHARED:
        return None
    return _Item(tokens, parents, paths, rows)


def _packs(items: list[_Item], pack_tokens: int) -> list[list[_Item]]:
    """Items in packs of at most `pack_tokens` tokens (an item larger than that alone), largest first:
    next-fit on decreasing sizes leaves at most one item's worth unused per pack."""
    packs: list[list[_Item]] = []
    used = pack_tokens
    for item in sorted(items, key=lambda it: -it.size):
        if used + item.size > pack_tokens:
            packs.append([])
            used = 0
        packs[-1].append(item)
        used += item.size
    return packs


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
        model: a causal LM taking `position_ids`, a 4D `attention_mask` and `logits_to_keep`.
        groups: the requests of each item, in order.
        max_length, batch_tokens, max_batch, progress: as for `scoring.loglikelihoods` (`max_batch` bounds
            only the plain path's batches); a pack holds at most min(batch_tokens, PACK_TOKENS) tokens.
    """
    requests = [r for group in groups for r in group]
    for index, request in enumerate(requests):
        check_request(index, request, max_length)
    window = getattr(getattr(model, "config", None), "sliding_window", None)
    items, plain, offset = [], [], 0
    for group in groups:
        indices = list(range(offset, offset + len(group)))
        offset += len(group)
        item = _split(requests, indices, max_length)
        if item is None or (window is not None and item.longest > window):
            plain += indices
        else:
            items.append(item)
    results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    if items and not _packed_path_works(model, requests, items[0], max_length):
        plain += [i for item in items for rows in item.rows.values() for i in rows]
        items = []
    for pack in _packs(items, min(batch_tokens, PACK_TOKENS)):
        _score_pack(model, requests, pack, results)
        if progress is not None:
            progress(sum(len(rows) for item in pack for rows in item.rows.values()))
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


def _packed_path_works(model: Any, requests: list[Request], item: _Item, max_length: int) -> bool:
    """Whether the model honours a custom 4D mask and position ids: one item scored both ways, once per model
    (a model that ignored the mask would give other numbers silently, not an error)."""
    try:
        return _PACKS_WORK[model]
    except (KeyError, TypeError):
        pass
    indices = [i for rows in item.rows.values() for i in rows]
    packed: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    try:
        _score_pack(model, requests, [item], packed)
    except TypeError:  # a forward without position_ids / attention_mask / logits_to_keep
        works = False
    else:
        plain = loglikelihoods(model, [requests[i] for i in indices], max_length=max_length)
        works = all(abs(packed[i][0] - p[0]) < AGREE for i, p in zip(indices, plain, strict=True))
    with contextlib.suppress(TypeError):  # a model that is not weak-referenceable is checked at every call
        _PACKS_WORK[model] = works
    return works


def _score_pack(model: Any, requests: list[Request], pack: list[_Item], results: list[tuple[float, bool]]) -> None:
    """One forward pass over the pack's item trees; writes the results of every request they hold."""
    ids: list[int] = []
    positions: list[int] = []
    parents: list[int] = []  # each token's predecessor in the pack, -1 for an item's first token
    reads: list[tuple[int, list[int]]] = []  # (request index, pack positions predicting its continuation)
    for item in pack:
        start = len(ids)
        for token, parent in zip(item.tokens, item.parents, strict=True):
            ids.append(token)
            parents.append(-1 if parent < 0 else start + parent)
            positions.append(0 if parent < 0 else positions[start + parent] + 1)  # its depth: the input's position
        for inputs, indices in item.rows.items():
            path = item.paths[inputs]
            for index in indices:  # input position m predicts token m + 1: the last len(cont) positions
                reads.append((index, [start + n for n in path[len(path) - len(requests[index].continuation) :]]))
    size = len(ids)
    allowed = torch.zeros((size, size), dtype=torch.bool)
    for position, parent in enumerate(parents):  # a token sees itself and what it follows, back to its item's start
        if parent >= 0:
            allowed[position] = allowed[parent]
        allowed[position, position] = True
    parameter = next(model.parameters())
    mask = torch.zeros((size, size), dtype=parameter.dtype).masked_fill(~allowed, torch.finfo(parameter.dtype).min)
    keep = sorted({p for _, read in reads for p in read})
    row_of = {p: k for k, p in enumerate(keep)}
    logits = model(
        input_ids=torch.tensor([ids], device=parameter.device),
        position_ids=torch.tensor([positions], device=parameter.device),
        attention_mask=mask[None, None].to(parameter.device),
        logits_to_keep=torch.tensor(keep, device=parameter.device),
        use_cache=False,
    ).logits[0]
    logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
    for index, read in reads:
        rows = logprobs[[row_of[p] for p in read]]
        results[index] = read_scores(rows, len(rows), requests[index].continuation)
