"""Sentence features from any transformers model: the mean of the last hidden states over real tokens.

Mean pooling is how sentence-transformers models (all-MiniLM-L6-v2) were trained to be used, and it
works for a classifier (its encoder's states, not its logits) and for a causal LM alike. `cls` reads
the first position instead, where a BERT classifier's head looks (not meaningful for a causal LM). Texts are
tokenized once in `prepare` (the token ids key the result cache), then scored in batches of similar
length, padded on the right, in eval mode (no dropout) and without gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

Encoding = dict[str, list[int]]  # input_ids (and token_type_ids for BERT-like tokenizers)


def encode(tokenizer: Any, texts: list[str], pairs: list[str] | None = None, max_length: int = 128) -> list[Encoding]:
    """Tokenize each text (with its pair, jointly: `[CLS] a [SEP] b [SEP]`), truncated to `max_length`."""
    args = (texts,) if pairs is None else (texts, pairs)
    enc = tokenizer(*args, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
    return [{k: list(enc[k][i]) for k in keys} for i in range(len(texts))]


def _batches(encodings: list[Encoding], batch_tokens: int) -> Iterator[list[int]]:
    """Indices in batches of similar length whose padded size stays near `batch_tokens`, longest first."""
    order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i]["input_ids"]))
    start = 0
    while start < len(order):
        longest = max(1, len(encodings[order[start]]["input_ids"]))
        size = max(1, batch_tokens // longest)
        yield order[start : start + size]
        start += size


def _collate(encodings: list[Encoding], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    width = max(len(e["input_ids"]) for e in encodings)
    batch: dict[str, torch.Tensor] = {}
    for key in encodings[0]:
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([e[key] + [fill] * (width - len(e[key])) for e in encodings], device=device)
    lengths = torch.tensor([len(e["input_ids"]) for e in encodings], device=device)
    batch["attention_mask"] = (torch.arange(width, device=device)[None, :] < lengths[:, None]).long()
    return batch


@torch.no_grad()
def forward_batches(
    lm: Any,
    encodings: list[Encoding],
    read: Callable[[Any, torch.Tensor], torch.Tensor],
    batch_tokens: int = 4096,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """`read(outputs, attention_mask)` for every encoding, in the input order, as a float32 array (N, ...)."""
    model, pad_id = lm.model, lm.tokenizer.pad_token_id
    pad_id = 0 if pad_id is None else pad_id
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows: list[np.ndarray | None] = [None] * len(encodings)
    try:
        for indices in _batches(encodings, batch_tokens):
            batch = _collate([encodings[i] for i in indices], pad_id, device)
            outputs = model(**batch, output_hidden_states=True)
            values = read(outputs, batch["attention_mask"]).float().cpu().numpy()
            for i, value in zip(indices, values, strict=True):
                rows[i] = value
            if progress is not None:
                progress(len(indices))
    finally:
        model.train(was_training)
    return np.stack(rows)  # type: ignore[arg-type]


def mean_pooled(outputs: Any, mask: torch.Tensor) -> torch.Tensor:
    """(B, H): the last hidden layer averaged over the real (unpadded) tokens."""
    hidden = outputs.hidden_states[-1]  # (B, T, H)
    weights = mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


def first_token(outputs: Any, mask: torch.Tensor) -> torch.Tensor:
    """(B, H): the last hidden state at the first position, BERT's [CLS], which its classifier reads."""
    return outputs.hidden_states[-1][:, 0]


POOLING = {"mean": mean_pooled, "cls": first_token}


def sentence_features(
    lm: Any, encodings: list[Encoding], batch_tokens: int = 4096, progress: Any = None, pooling: str = "mean"
) -> np.ndarray:
    """(N, H) features of each encoding: mean-pooled (sentence-transformers) or the [CLS] state (`cls`)."""
    return forward_batches(lm, encodings, POOLING[pooling], batch_tokens, progress)
