"""Batched greedy generation, the way lm-evaluation-harness's `hf` model runs `generate_until` requests.

Every probe that generates text (canary, generation, lm_eval's generate_until) turns its items into
`GenerationRequest`s and calls `generate_texts` once, so batching and stopping happen in one place:

- requests with the same settings (max_new_tokens, stop strings) are batched together, longest first,
  left-padded with an attention mask (HF generate continues every row from its right edge);
- a prompt keeps its last `max_length - max_new_tokens` tokens (lm-eval's left truncation);
- a row stops once its generation contains any stop string (or the model's end of sequence), and the
  text is decoded without special tokens and cut before the first stop string, as lm-eval cuts it.

Greedy decoding depends only on each row's own tokens, so batching changes no generation beyond float
rounding (tests compare a batch with each prompt alone and with lm-eval's own generations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from forgetless.probes.base import Comparison
from forgetless.probes.scoring import length_batches, model_max_length, prefix_token_id


@dataclass(frozen=True)
class GenerationRequest:
    context: tuple[int, ...]  # the prompt's tokens
    max_new_tokens: int
    until: tuple[str, ...] = ()  # stop strings; the generation is cut before the first one


def encode_prompt(tokenizer: Any, prompt: str, add_special_tokens: bool = True) -> tuple[int, ...]:
    """A prompt's tokens as lm-eval encodes a generation context (the tokenizer's own special tokens)."""
    return tuple(tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"])


def cut_at_stop(text: str, until: tuple[str, ...] | list[str]) -> str:
    """The text before the first occurrence of any stop string (lm-eval's postprocess_generated_text)."""
    for stop in until:
        if stop:
            text = text.split(stop)[0]
    return text


class _StopStrings(StoppingCriteria):
    """Marks a row done once its generated text contains a stop string (checked on the decoded text, so a
    stop string split across tokens, or inside a longer token, is found)."""

    def __init__(self, tokenizer: Any, until: tuple[str, ...], start: int) -> None:
        self.tokenizer, self.until, self.start = tokenizer, [s for s in until if s], start

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.start :], skip_special_tokens=False)
        done = [any(s in t for s in self.until) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def stop_strings(tokenizer: Any, until: tuple[str, ...]) -> tuple[str, ...]:
    """The request's stop strings and the end-of-sequence token's text (lm-eval's handle_stop_sequences)."""
    eos = (
        None
        if tokenizer.eos_token_id is None
        else tokenizer.decode([tokenizer.eos_token_id], skip_special_tokens=False)
    )
    return (*until, eos) if eos and eos not in until else tuple(until)


@torch.inference_mode()
def generate_texts(
    lm: Any,
    requests: list[GenerationRequest],
    *,
    batch_tokens: int = 4096,
    max_batch: int = 64,
    max_length: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Each request's greedy generation, cut at its stop strings. `lm` has `model` and `tokenizer`."""
    model, tok = lm.model, lm.tokenizer
    limit = max_length or model_max_length(model)
    results: list[str] = [""] * len(requests)
    groups: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for index, request in enumerate(requests):
        if request.max_new_tokens >= limit:
            raise ValueError(f"request {index}: max_new_tokens {request.max_new_tokens} >= the model's {limit} tokens")
        groups.setdefault((request.max_new_tokens, request.until), []).append(index)
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for (max_new, until), indices in groups.items():
        keep = limit - max_new
        # An empty prompt starts from the BOS (else EOS) token, as lm-eval's empty contexts do.
        contexts = {i: requests[i].context[-keep:] or (prefix_token_id(tok),) for i in indices}
        order = sorted(indices, key=lambda i: (-len(contexts[i]), contexts[i]))
        stops = stop_strings(tok, until)
        widths = [len(contexts[i]) + max_new for i in order]
        for rows in length_batches(widths, batch_tokens, max_batch):
            batch = order[rows]
            width = max(len(contexts[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # left padding: every prompt ends at the right edge
                tokens = contexts[i]
                ids[row, width - len(tokens) :] = torch.tensor(tokens)
                mask[row, width - len(tokens) :] = 1
            output = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new,
                stopping_criteria=StoppingCriteriaList([_StopStrings(tok, stops, width)]),
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
                use_cache=True,
            )
            texts = tok.batch_decode(output[:, width:].cpu(), skip_special_tokens=True)
            for i, text in zip(batch, texts, strict=True):
                results[i] = cut_at_stop(text, stops)
            if progress is not None:
                progress(len(batch))
    return results


def unchanged(before: Any, old: list[str], new: list[str]) -> Comparison:
    """The share of generations identical to the base model's (information, no verdict)."""
    n = len(old)
    same = sum(a == b for a, b in zip(old, new, strict=True)) / n if n else 1.0
    note = f"{round(same * n)} of {n} generations identical to the base model's"
    none = (None, None, None, None)
    return Comparison(before.name, before.role, "unchanged", True, 1.0, same, same - 1.0, *none, n, "info", note)
