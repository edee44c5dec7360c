"""Gradient interference: cosines of known gradients, the cadence, .grad left alone, points during training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from forgetless.diagnostics.interference import due, gradients, products, summarize
from tests.diagnostics.conftest import train_with_diagnostics
from tests.diagnostics.toy import ToyLM


def test_cosine_overall_and_per_layer_from_known_gradients() -> None:
    names = ["model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight", "lm_head.weight"]
    new = [torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])]
    kept = [torch.tensor([0.0, 3.0]), torch.tensor([-2.0, -2.0]), None]  # the head does not reach the kept loss
    point = summarize(products(names, new, kept))
    blocks = {r["block"]: r["cosine"] for r in point["blocks"]}
    assert blocks["0"] == pytest.approx(0.0)  # orthogonal
    assert blocks["1"] == pytest.approx(-1.0)  # opposite: the new task's step undoes the kept
    assert blocks["head"] is None  # a zero gradient has no direction
    # overall: <new, kept> = 0 - 4 + 0 = -4; ||new||^2 = 1 + 2 + 4 = 7; ||kept||^2 = 9 + 8 = 17
    assert point["cosine"] == pytest.approx(-4 / math.sqrt(7 * 17))
    assert {r["module"]: r["cosine"] for r in point["modules"]}["up_proj"] == pytest.approx(-4 / math.sqrt(3 * 17))


def test_points_are_due_at_the_ends_every_n_steps_or_within_the_overhead() -> None:
    assert [s for s in range(21) if due(s, 20, 0, 5)] == [0, 5, 10, 15, 20]
    assert [s for s in range(11) if due(s, 10, 0, 4)] == [0, 4, 8, 10]  # the last step always
    # auto: a 2 s point over 5% of a 1 s step -> a point every 40 steps after the last one
    assert not due(39, 100, 0, "auto", point_seconds=2.0, step_seconds=1.0, overhead=0.05)
    assert due(40, 100, 0, "auto", point_seconds=2.0, step_seconds=1.0, overhead=0.05)
    assert not due(39, 100, 20, "auto", point_seconds=2.0, step_seconds=1.0, overhead=0.1)  # every 20 steps
    assert due(40, 100, 20, "auto", point_seconds=2.0, step_seconds=1.0, overhead=0.1)
    assert not due(5, 100, 0, "auto")  # steps not timed yet: wait
    assert due(0, 100, 0, "auto") and due(100, 100, 0, "auto")


def test_gradients_leave_grad_untouched() -> None:
    toy = ToyLM()
    toy.head.weight.grad = torch.full_like(toy.head.weight, 7.0)
    grads = gradients(toy, list(toy.parameters()), {"input_ids": torch.tensor([[0, 1]])})
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    assert torch.equal(toy.head.weight.grad, torch.full_like(toy.head.weight, 7.0))
    assert toy.embed.weight.grad is None


def test_points_at_the_start_every_n_steps_and_the_end(old_base: Path, tmp_path: Path) -> None:
    model, report, _ = train_with_diagnostics(old_base, tmp_path, [], steps=5, every=2, drift=False, importance=False)
    assert set(report) == {"interference"}
    points = report["interference"]["points"]
    assert [p["step"] for p in points] == [0, 2, 4, 5]
    assert all(-1 <= p["cosine"] <= 1 for p in points)
    assert [r["block"] for r in points[-1]["blocks"]] == ["embed", "0", "1", "norm", "head"]
    assert report["interference"]["seconds"] == pytest.approx(sum(p["seconds"] for p in points))
    assert report["interference"]["points"][0]["modules"]  # per module type too
    saved = json.loads((tmp_path / "diagnostics" / "interference.json").read_text())
    assert [p["step"] for p in saved["points"]] == [0, 2, 4, 5]  # kept for a resumed stage


def test_a_stage_stopped_early_gets_a_last_point(old_base: Path, tmp_path: Path) -> None:
    from transformers import TrainerCallback

    class StopAt3(TrainerCallback):  # what the guard's `stop` policy does
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
            control.should_training_stop = state.global_step == 3
            return control

    _, report, _ = train_with_diagnostics(
        old_base, tmp_path, [], steps=8, every=2, drift=False, importance=False, extra=[StopAt3()]
    )
    assert [p["step"] for p in report["interference"]["points"]] == [0, 2, 3]
