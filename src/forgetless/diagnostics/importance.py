"""Parameter importance: which weights the kept capability depends on, and which the new task pulls on.

The diagonal Fisher F_i = E[(d loss / d theta_i)^2] says how much the loss on some data changes when
weight i moves (Kirkpatrick et al., PNAS 2017, use it for EWC). Estimated twice at the start of a
stage, on the same weights and with the same estimator as EWC (`forgetless.methods.ewc.estimate_fisher`,
empirical Fisher, each text scored on its own and truncated to the training `max_length`):

- `kept`: on the run's `keep` texts, or, without them, the suite's perplexity probe texts;
- `new`: on the stage's training texts.

Weights that matter to both are where training on the new task is most likely to damage the old.
Each Fisher is mean-normalized like EWC's `normalize: mean` (divided by its mean entry, so 1 is an
average weight and the two are comparable), then reported as the mean over each (block, module type)
cell, each block and each module type, plus the same random sample of individual entries from both
(for a scatter plot) with two summaries of their agreement: the Spearman rank correlation, and the
share of the top 1% by kept Fisher that is also in the top 1% by new Fisher (1% if unrelated).

It is computed over the model's own weights (every floating-point parameter but LoRA's adapter
tensors), whether or not they train this stage: the importance of frozen weights shows what
freezing protected; LoRA's adapters start at B = 0, where half of their Fisher is zero.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from forgetless.diagnostics.layers import merge, tally
from forgetless.diagnostics.start import LORA_PARTS
from forgetless.methods.base import TrainContext
from forgetless.methods.ewc import estimate_fisher


def model_weights(model: Any) -> list[tuple[str, torch.Tensor]]:
    """The model's own floating-point weights: every parameter except LoRA's adapter tensors."""
    return [
        (n, p)
        for n, p in model.named_parameters()
        if p.is_floating_point() and not any(f".{m}." in n for m in LORA_PARTS)
    ]


def sample_positions(numels: list[int], n: int, seed: int) -> list[torch.Tensor]:
    """Up to `n` distinct entries drawn uniformly over all parameters: flat offsets within each, sorted."""
    total = sum(numels)
    if total == 0 or n <= 0:
        return [torch.empty(0, dtype=torch.long) for _ in numels]
    generator = torch.Generator().manual_seed(seed)
    if total <= 4 * n:  # small enough to shuffle: exactly min(n, total) entries
        flat = torch.randperm(total, generator=generator)[:n].sort().values
    else:  # a model-sized permutation would cost 8 bytes a weight: draw, and drop the rare repeats
        flat = torch.randint(total, (n,), generator=generator).unique()
    ends = torch.tensor(numels).cumsum(0)
    which = torch.searchsorted(ends, flat, right=True)
    starts = ends - torch.tensor(numels)
    return [flat[which == i] - starts[i] for i in range(len(numels))]


def fisher_summary(fisher: dict[str, torch.Tensor], positions: list[torch.Tensor]) -> dict[str, Any]:
    """Mean-normalized Fisher per cell, block and module, and the entries at `positions` (same order as `fisher`).

    Normalizing the means is the same as averaging `ewc.normalized(fisher, "mean")`: both divide by
    the mean entry over every tensor, here without a second model-sized copy.
    """
    sums = {name: float(f.sum(dtype=torch.float64)) if f.numel() else 0.0 for name, f in fisher.items()}
    count = sum(f.numel() for f in fisher.values())
    scale = sum(sums.values()) / count if count else 0.0
    cells = tally((name, {"sum": sums[name], "params": f.numel()}) for name, f in fisher.items())

    def rows(cells: Any, label: str) -> list[dict[str, Any]]:
        out = []
        for (group, kind), s in cells.items():
            row = {"block": group} if label in ("block", "both") else {}
            if label in ("module", "both"):
                row["module"] = kind
            mean = s["sum"] / s["params"] if s["params"] else 0.0
            out.append({**row, "mean": mean / scale if scale > 0 else 0.0, "params": int(s["params"])})
        return out

    picked = [
        f.detach().reshape(-1)[p.to(f.device)].float().cpu() for f, p in zip(fisher.values(), positions, strict=True)
    ]
    sample = torch.cat(picked) / scale if picked and scale > 0 else torch.zeros(0)
    return {
        "scale": scale,  # the mean raw Fisher entry: raw value = normalized value * scale
        "blocks": rows(merge(cells, "group"), "block"),
        "modules": rows(merge(cells, "module"), "module"),
        "cells": rows(cells, "both"),
        "sample": sample,
    }


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing the mean of their positions (what Spearman's correlation needs)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    return (starts + (counts - 1) / 2.0)[inverse]


def agreement(kept: np.ndarray, new: np.ndarray, top: float = 0.01) -> dict[str, float | None]:
    """Spearman correlation of two Fisher samples, and the share of kept's top `top` also in new's top."""
    if len(kept) < 2:
        return {"spearman": None, "top_overlap": None}
    rk, rn = average_ranks(kept), average_ranks(new)
    spearman = None if rk.std() == 0 or rn.std() == 0 else float(np.corrcoef(rk, rn)[0, 1])
    k = max(1, int(round(len(kept) * top)))
    top_kept = set(np.argsort(-kept, kind="stable")[:k].tolist())
    top_new = set(np.argsort(-new, kind="stable")[:k].tolist())
    return {"spearman": spearman, "top_overlap": len(top_kept & top_new) / k}


def _fisher(model: Any, named: list[tuple[str, torch.Tensor]], context: TrainContext, texts: list[str]) -> Any:
    return estimate_fisher(model, named, replace(context, keep_texts=texts), "empirical", len(texts))


def parameter_importance(
    model: Any, context: TrainContext, kept: list[str], new: list[str], texts: int = 16, sample: int = 10000
) -> dict[str, Any]:
    """The importance diagnostic (JSON-ready): kept and new Fisher per layer, a paired sample, agreement, timings.

    Args:
        model: the model at the start of the stage (a PEFT model too).
        context: gives the tokenizer, `max_length` and the seed.
        kept, new: the texts of what must be kept and of the new task; the first `texts` of each are used.
        texts: texts per Fisher estimate.
        sample: individual entries kept for the scatter plot.
    """
    named = model_weights(model)
    flags = [p.requires_grad for _, p in named]
    positions = sample_positions([p.numel() for _, p in named], sample, context.seed + context.stage)
    result: dict[str, Any] = {"fisher": "empirical, mean-normalized (1 = the average weight)", "texts": {}}
    try:
        for p in [p for _, p in named]:
            p.requires_grad_(True)  # gradients for frozen weights too, released with the Fisher
        for side, chosen in (("kept", kept[:texts]), ("new", new[:texts])):
            began = time.perf_counter()
            summary = fisher_summary(_fisher(model, named, context, chosen), positions)
            summary["seconds"] = time.perf_counter() - began
            result[side] = summary
            result["texts"][side] = len(chosen)
    finally:
        for (_, p), flag in zip(named, flags, strict=True):
            p.requires_grad_(flag)
    kept_sample, new_sample = result["kept"].pop("sample"), result["new"].pop("sample")
    result["agreement"] = agreement(kept_sample.numpy(), new_sample.numpy())
    result["sample"] = {
        "kept": [float(f"{v:.4g}") for v in kept_sample.tolist()],
        "new": [float(f"{v:.4g}") for v in new_sample.tolist()],
    }
    result["seconds"] = result["kept"]["seconds"] + result["new"]["seconds"]
    return result


def probe_texts(probes: list[Any], tokenizer: Any, limit: int) -> list[str]:
    """Up to `limit` texts of the perplexity probes among `probes`: the kept data when a run has no `keep`."""
    texts: list[str] = []
    for probe in probes:
        if getattr(probe.config, "kind", None) != "perplexity" or len(texts) >= limit:
            continue
        docs = probe.prepare(tokenizer)["docs"]
        texts += [tokenizer.decode(d) for d in docs[: limit - len(texts)]]
    return texts
