"""Gradient interference: does a step on the new task also push the kept capability uphill?

At a few points during training, the gradient of the new-task loss g_new and of the kept loss g_kept
are taken at the current weights, on two small fixed batches, and compared by cosine similarity,
cos = <g_new, g_kept> / (||g_new|| ||g_kept||), over all trainable weights and per block and module
type. Sign convention: a gradient step moves along -g_new, which changes the kept loss by about
-lr * <g_new, g_kept> to first order, so

- cos > 0: the new task's update also lowers the kept loss (transfer);
- cos = 0: it leaves it alone, to first order;
- cos < 0: it raises it, the update for the new task undoes the old (interference; GEM, Lopez-Paz &
  Ranzato 2017, and A-GEM project such steps away).

Each point costs two forward and backward passes on `batch` texts, run with `torch.autograd.grad`
so the `.grad` the optimizer uses is untouched, in eval mode (no dropout) so that points compare.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from forgetless.diagnostics.layers import Cells, merge, tally


def cosine_rows(cells: Cells, label: str) -> list[dict[str, Any]]:
    """Rows of cos(g_new, g_kept) from summed `dot`, `new_sq`, `kept_sq`; None where a gradient is zero."""
    rows = []
    for (group, kind), s in cells.items():
        row: dict[str, Any] = {"block": group} if label in ("block", "both") else {}
        if label in ("module", "both"):
            row["module"] = kind
        norm = math.sqrt(s["new_sq"] * s["kept_sq"])
        row["cosine"] = s["dot"] / norm if norm > 0 else None
        rows.append(row)
    return rows


def products(
    names: list[str], new: list[torch.Tensor | None], kept: list[torch.Tensor | None]
) -> list[tuple[str, dict[str, float]]]:
    """Each parameter's <g_new, g_kept>, ||g_new||^2 and ||g_kept||^2 (a missing gradient counts as zero)."""
    out = []
    for name, a, b in zip(names, new, kept, strict=True):
        a32 = None if a is None else a.detach().float().reshape(-1)
        b32 = None if b is None else b.detach().float().reshape(-1)
        out.append(
            (
                name,
                {
                    "dot": float(a32 @ b32) if a32 is not None and b32 is not None else 0.0,
                    "new_sq": float(a32 @ a32) if a32 is not None else 0.0,
                    "kept_sq": float(b32 @ b32) if b32 is not None else 0.0,
                },
            )
        )
    return out


def summarize(pieces: list[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    """Overall, per-block and per-module cosines of one point."""
    cells = tally(pieces)
    total = {("", ""): {k: sum(c[k] for c in cells.values()) for k in ("dot", "new_sq", "kept_sq")}}
    return {
        "cosine": cosine_rows(total, "none")[0]["cosine"],
        "blocks": cosine_rows(merge(cells, "group"), "block"),
        "modules": cosine_rows(merge(cells, "module"), "module"),
    }


def make_batch(texts: Any, tokenizer: Any, max_length: int) -> dict[str, torch.Tensor]:
    """One padded batch, tokenized exactly as training tokenizes (`texts`: a list or a Dataset with `text`)."""
    import datasets
    from transformers import DataCollatorForSeq2Seq

    from forgetless.train.data import tokenize_examples

    dataset = datasets.Dataset.from_dict({"text": list(texts)}) if isinstance(texts, list) else texts
    tokenized = tokenize_examples(dataset, tokenizer, max_length, pack=False)
    rows = [{k: tokenized[i][k] for k in ("input_ids", "attention_mask", "labels")} for i in range(len(tokenized))]
    return dict(DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)(rows, return_tensors="pt"))


@torch.enable_grad()
def gradients(model: Any, params: list[torch.Tensor], batch: dict[str, torch.Tensor]) -> list[torch.Tensor | None]:
    """d loss / d params on `batch` (the model's mean next-token loss), leaving every `.grad` as it was."""
    device = next(model.parameters()).device
    loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
    return list(torch.autograd.grad(loss, params, allow_unused=True))


def interference_point(
    model: Any, step: int, new_batch: dict[str, torch.Tensor], kept_batch: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """cos(g_new, g_kept) at the current weights over the parameters trainable now, overall and per layer."""
    began = time.perf_counter()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    was_training = model.training
    model.eval()
    try:
        g_new = gradients(model, params, new_batch)
        g_kept = gradients(model, params, kept_batch)
    finally:
        model.train(was_training)
    point = {"step": step, **summarize(products([n for n, _ in named], g_new, g_kept))}
    point["seconds"] = time.perf_counter() - began
    return point


def due(
    step: int,
    max_steps: int,
    last: int,
    every: int | str,
    point_seconds: float | None = None,
    step_seconds: float | None = None,
    overhead: float = 0.05,
) -> bool:
    """Whether `step` gets a point. The start and the last step always do; between them every `every`
    steps, or, for `every="auto"`, once the steps since the `last` point have taken 1/`overhead` times
    what a point costs (so points between the ends cost about `overhead` of the training time).
    """
    if step == 0 or step >= max_steps:
        return True
    if every != "auto":
        return step % int(every) == 0
    if point_seconds is None or not step_seconds:
        return False  # not timed yet
    return step - last >= max(1, math.ceil(point_seconds / (overhead * step_seconds)))
