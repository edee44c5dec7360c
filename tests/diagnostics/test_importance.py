"""Fisher kept vs new: per-layer means of the mean-normalized Fisher, the paired sample, agreement, the estimator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forgetless.diagnostics.importance import (
    agreement,
    average_ranks,
    fisher_summary,
    parameter_importance,
    sample_positions,
)
from forgetless.methods.ewc import normalized

FISHER = {
    "model.layers.0.self_attn.q_proj.weight": torch.tensor([[1.0, 3.0], [0.0, 4.0]]),  # sum 8
    "model.layers.0.mlp.up_proj.weight": torch.tensor([2.0, 2.0]),  # sum 4
    "model.layers.1.self_attn.q_proj.weight": torch.tensor([12.0, 0.0, 0.0, 0.0]),  # sum 12
    "lm_head.weight": torch.tensor([0.0, 0.0]),  # sum 0
}  # 12 entries, total 24: mean entry 2


def by(rows: list[dict], **match: str) -> dict:
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def test_fisher_means_per_layer_are_normalized_by_the_mean_entry() -> None:
    summary = fisher_summary(FISHER, sample_positions([4, 2, 4, 2], 0, seed=0))
    assert summary["scale"] == pytest.approx(2.0)
    cell = {"block": "0", "module": "q_proj", "mean": 1.0, "params": 4}
    assert by(summary["cells"], block="0", module="q_proj") == cell
    assert by(summary["cells"], block="0", module="up_proj")["mean"] == pytest.approx(1.0)
    assert by(summary["blocks"], block="0")["mean"] == pytest.approx(12 / 6 / 2)
    assert by(summary["blocks"], block="1")["mean"] == pytest.approx(12 / 4 / 2)
    assert by(summary["blocks"], block="head")["mean"] == 0.0
    assert by(summary["modules"], module="q_proj")["mean"] == pytest.approx(20 / 8 / 2)
    # the same as averaging EWC's own normalization over each cell
    norm = normalized(FISHER, "mean")
    expected = float(norm["model.layers.1.self_attn.q_proj.weight"].mean())
    assert by(summary["cells"], block="1")["mean"] == pytest.approx(expected)


def test_sample_positions_are_distinct_entries_of_each_tensor() -> None:
    numels = [4, 2, 4, 2]
    positions = sample_positions(numels, 100, seed=3)  # more than there are: every entry once
    assert [p.tolist() for p in positions] == [[0, 1, 2, 3], [0, 1], [0, 1, 2, 3], [0, 1]]
    some = sample_positions(numels, 5, seed=3)
    assert sum(len(p) for p in some) == 5 and all(((p >= 0) & (p < n)).all() for p, n in zip(some, numels, strict=True))
    summary = fisher_summary(FISHER, positions)
    assert summary["sample"].tolist() == pytest.approx([0.5, 1.5, 0, 2, 1, 1, 6, 0, 0, 0, 0, 0])  # each entry / 2


def test_agreement() -> None:
    x = np.array([0.1, 5.0, 2.0, 0.0, 3.0] * 40)
    assert agreement(x, x) == {"spearman": pytest.approx(1.0), "top_overlap": 1.0}
    assert agreement(x, -x)["spearman"] == pytest.approx(-1.0) and agreement(x, -x)["top_overlap"] < 0.5
    assert average_ranks(np.array([5.0, 1.0, 5.0, 3.0])).tolist() == [2.5, 0.0, 2.5, 1.0]
    assert agreement(np.array([1.0]), np.array([2.0])) == {"spearman": None, "top_overlap": None}


def test_importance_on_the_tiny_model(old_base, tiny_context) -> None:  # noqa: ANN001
    from transformers import AutoModelForCausalLM

    from tests.methods.forgetting_setup import NEW_TRAIN, OLD_TRAIN

    model = AutoModelForCausalLM.from_pretrained(old_base)
    model.model.layers[0].requires_grad_(False)  # frozen weights are measured too, and stay frozen
    result = parameter_importance(model, tiny_context, OLD_TRAIN, NEW_TRAIN, texts=4, sample=500)
    assert result["texts"] == {"kept": 4, "new": 4}
    assert [r["block"] for r in result["kept"]["blocks"]] == ["embed", "0", "1", "norm", "head"]
    assert by(result["kept"]["blocks"], block="0")["mean"] > 0  # frozen, still measured
    assert not any(p.requires_grad for p in model.model.layers[0].parameters())
    assert all(p.grad is None for p in model.parameters())  # autograd.grad: nothing left in .grad
    assert len(result["sample"]["kept"]) == len(result["sample"]["new"]) > 400
    kept = np.array(result["sample"]["kept"])
    assert (kept >= 0).all() and kept.max() > 1  # mean-normalized and heavy-tailed: some weights matter more
    assert -1 <= result["agreement"]["spearman"] <= 1 and result["seconds"] > 0
