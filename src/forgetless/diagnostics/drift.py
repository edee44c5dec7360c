"""Parameter drift: how far each layer's weights moved during a stage, ||theta - theta_0||.

Forgetting happens where weights move, and where they move depends on the method: freezing pins
the lower blocks, L2-SP shrinks every step, LoRA confines the change to a low-rank update. Measured
once at the end of the stage, per (block, module type) cell, per block and per module type:

- `drift` = ||theta - theta_0||_2 over the cell's entries (Frobenius norm, in the weights' units);
- `relative` = drift / ||theta_0||_2 (dimensionless; 0.01 = the cell moved by 1% of its size);
- `rms` = drift / sqrt(entries), the typical change of one weight.

What theta is depends on the method, and the result says which (`what`):

- full weights (`weights`): theta is the weight tensor itself; theta_0 comes from start.py.
- LoRA, DoRA (`lora`): the drift of an adapted weight W is that of its effective weight,
  W_eff - W_0: the merged update scale * B @ A for LoRA, and for DoRA the merged weight (with its
  learned magnitudes) minus W_0, both as PEFT merges them. The adapter tensors A and B themselves
  are not reported: A is random at the start, so its change says nothing about the model. relative
  is then ||delta W|| / ||W_0||, the base weight's norm.

Frozen parameters cannot move: their drift is 0 by construction (`frozen: true`), not measured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import torch

from forgetless.diagnostics.layers import Cells, merge, tally
from forgetless.diagnostics.start import LORA_PARTS, StartWeights, tracked


def drift_rows(cells: Cells, label: str) -> list[dict[str, Any]]:
    """JSON rows from summed cells (keys `diff_sq`, `start_sq`, `params`, `frozen` = frozen entries).

    `label` says which part of the (group, module) key names the row: "block", "module" or "both".
    """
    rows = []
    for (group, kind), s in cells.items():
        drift = math.sqrt(s["diff_sq"])
        start = math.sqrt(s["start_sq"]) if s.get("start_sq", 0.0) > 0 else None
        row: dict[str, Any] = {}
        if label in ("block", "both"):
            row["block"] = group
        if label in ("module", "both"):
            row["module"] = kind
        row.update(
            drift=drift,
            relative=None if start is None else drift / start,
            rms=drift / math.sqrt(s["params"]) if s["params"] else 0.0,
            params=int(s["params"]),
            frozen=s.get("frozen", 0.0) == s["params"],
        )
        rows.append(row)
    return rows


def summarize(pieces: Iterator[tuple[str, dict[str, float]]] | list[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    """Per-cell, per-block, per-module and total drift from each parameter's squared norms."""
    cells = tally(pieces)
    total = {("", ""): {k: sum(c.get(k, 0.0) for c in cells.values()) for k in ("diff_sq", "start_sq", "params")}}
    total[("", "")]["frozen"] = sum(c.get("frozen", 0.0) for c in cells.values())
    overall = drift_rows(total, "none")[0]
    return {
        "total": overall,
        "blocks": drift_rows(merge(cells, "group"), "block"),
        "modules": drift_rows(merge(cells, "module"), "module"),
        "cells": drift_rows(cells, "both"),
    }


def _sq(t: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(t.detach().float())) ** 2


def lora_deltas(model: Any) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    """(base weight's name, W_eff - W_0, W_0) for every PEFT LoRA/DoRA-adapted layer of `model`."""
    for name, module in model.named_modules():
        adapters = getattr(module, "lora_A", None)
        if not isinstance(adapters, torch.nn.ModuleDict) or not hasattr(module, "get_delta_weight"):
            continue
        base = module.get_base_layer().weight
        for adapter in adapters:
            variants = getattr(module, "lora_variant", {})
            with torch.no_grad():
                if adapter in variants and base.is_floating_point():  # DoRA: merged weight minus the base
                    merged = variants[adapter].merge_safe(module, adapter, base.detach().clone())
                    delta = merged - base
                else:
                    delta = module.get_delta_weight(adapter)
            yield f"{name}.base_layer.weight", delta, base


def measure(model: Any, start: StartWeights | None) -> tuple[list[tuple[str, dict[str, float]]], str]:
    """Each parameter's squared drift and squared starting norm, and what was measured (`weights`/`lora`)."""
    pieces: list[tuple[str, dict[str, float]]] = []
    covered: set[str] = set()
    for name, delta, base in lora_deltas(model):
        start_sq = _sq(base) if base.is_floating_point() else 0.0  # a quantized base has no norm to compare
        pieces.append((name, {"diff_sq": _sq(delta), "start_sq": start_sq, "params": base.numel()}))
        covered.add(name)
    what = "lora" if covered else "weights"
    if start is not None:
        with torch.no_grad():
            for name, theta, theta_0 in start.pairs(model):
                diff = theta.detach().float() - theta_0.to(theta.device).float()
                pieces.append((name, {"diff_sq": _sq(diff), "start_sq": _sq(theta_0), "params": theta.numel()}))
                covered.add(name)
    moving = {n for n, _ in tracked(model)} | set(start.names if start else [])
    for name, param in model.named_parameters():
        # LoRA's tensors (A, B, DoRA's magnitudes) are part of W_eff above; a weight that became
        # trainable after the start has no theta_0 and is left out rather than called frozen.
        if name in covered or name in moving or any(f".{m}." in name for m in LORA_PARTS):
            continue
        n = param.numel()
        start_sq = _sq(param) if param.is_floating_point() else 0.0
        pieces.append((name, {"diff_sq": 0.0, "start_sq": start_sq, "params": n, "frozen": n}))
    return pieces, what


def parameter_drift(model: Any, start: StartWeights | None) -> dict[str, Any]:
    """The drift diagnostic of a stage's final model against its start (JSON-ready); frees the snapshot."""
    began = time.perf_counter()
    pieces, what = measure(model, start)
    result = {
        "what": what,
        "start": start.describe() if start is not None else "none: LoRA updates only",
        "memory_mib": (start.bytes / 2**20) if start is not None else 0.0,
        **summarize(pieces),
    }
    if start is not None:
        start.release()
    result["seconds"] = time.perf_counter() - began
    return result
