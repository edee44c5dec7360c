"""Drift ||theta - theta_0|| per layer: hand-computed norms, the two sources of theta_0, LoRA and DoRA."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from forgetless.diagnostics.drift import parameter_drift
from forgetless.diagnostics.start import StartWeights
from tests.diagnostics.toy import Toy


def by(rows: list[dict], **match: str) -> dict:
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def moved_toy() -> tuple[Toy, StartWeights]:
    """Block 1 frozen; block 0 moved by diag(3, 4) (norm 5), the head by 1 in each of its 8 entries."""
    toy = Toy()
    toy.blocks[1].fc.weight.requires_grad_(False)
    start = StartWeights.take(toy)
    with torch.no_grad():
        toy.blocks[0].fc.weight.add_(torch.diag(torch.tensor([3.0, 4.0])))
        toy.head.weight.add_(1.0)
    return toy, start


def test_drift_equals_the_hand_computed_norms() -> None:
    toy, start = moved_toy()
    assert start.mode == "snapshot" and start.bytes == 4 * (8 + 4 + 8)  # the three trainable tensors, fp32
    drift = parameter_drift(toy, start)
    assert drift["what"] == "weights"
    block0 = by(drift["blocks"], block="0")
    assert block0["drift"] == pytest.approx(5.0) and block0["relative"] == pytest.approx(5 / math.sqrt(2))
    assert block0["rms"] == pytest.approx(5 / 2) and block0["params"] == 4 and not block0["frozen"]
    assert by(drift["blocks"], block="1") == {
        "block": "1", "drift": 0.0, "relative": 0.0, "rms": 0.0, "params": 4, "frozen": True
    }  # fmt: skip
    head = by(drift["cells"], block="head", module="head")
    assert head["drift"] == pytest.approx(math.sqrt(8)) and head["relative"] == pytest.approx(0.5)  # / sqrt(8 * 4)
    assert by(drift["cells"], block="embed")["drift"] == 0.0
    start_norm = math.sqrt(8 * 1 + 2 + 2 + 8 * 4)
    assert drift["total"]["drift"] == pytest.approx(math.sqrt(25 + 8))
    assert drift["total"]["relative"] == pytest.approx(math.sqrt(33) / start_norm)
    assert [r["block"] for r in drift["blocks"]] == ["embed", "0", "1", "head"]
    assert by(drift["modules"], module="fc")["drift"] == pytest.approx(5.0)
    assert start.copies == {}  # the snapshot is freed once measured


def test_theta_0_read_back_from_the_stage_files_instead_of_a_copy(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    toy = Toy()
    save_file({n: p.detach().clone() for n, p in toy.named_parameters()}, str(tmp_path / "model.safetensors"))
    toy.blocks[1].fc.weight.requires_grad_(False)
    start = StartWeights.take(toy, tmp_path)
    assert start.mode == "files" and start.bytes == 0 and "files" in start.describe()
    with torch.no_grad():
        toy.blocks[0].fc.weight.add_(torch.diag(torch.tensor([3.0, 4.0])))
        toy.head.weight.add_(1.0)
    from_files = parameter_drift(toy, start)
    toy_again, snapshot = moved_toy()
    from_copy = parameter_drift(toy_again, snapshot)
    for key in ("total", "blocks", "cells"):
        assert from_files[key] == from_copy[key]


def test_files_that_are_not_the_starting_weights_fall_back_to_a_snapshot(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    toy = Toy()
    tensors = {n: p.detach().clone() for n, p in toy.named_parameters()}
    tensors["blocks.0.fc.weight"] += 1.0  # another model's weights under the same names
    save_file(tensors, str(tmp_path / "model.safetensors"))
    assert StartWeights.take(toy, tmp_path).mode == "snapshot"
    assert StartWeights.take(toy, tmp_path / "missing").mode == "snapshot"


def test_lora_drift_is_the_merged_update_scale_times_b_a() -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(Toy(), LoraConfig(r=1, lora_alpha=2, target_modules=["fc"], lora_dropout=0.0))
    start = StartWeights.take(model)
    assert start.names == [] and start.bytes == 0  # adapters need no theta_0: the update starts at zero
    fc0 = model.base_model.model.blocks[0].fc
    with torch.no_grad():
        fc0.lora_A["default"].weight.copy_(torch.tensor([[1.0, 2.0]]))
        fc0.lora_B["default"].weight.copy_(torch.tensor([[1.0], [0.0]]))
    drift = parameter_drift(model, start)
    assert drift["what"] == "lora"
    cell = by(drift["cells"], block="0", module="fc")
    assert cell["drift"] == pytest.approx(2 * math.sqrt(5))  # scale alpha/r = 2, B @ A = [[1, 2], [0, 0]]
    assert cell["relative"] == pytest.approx(2 * math.sqrt(5) / math.sqrt(2)) and not cell["frozen"]
    assert by(drift["cells"], block="1", module="fc")["drift"] == 0.0  # B still zero
    assert by(drift["cells"], block="head")["frozen"] and by(drift["cells"], block="head")["drift"] == 0.0
    assert drift["total"]["params"] == sum(p.numel() for p in Toy().parameters())  # adapters not counted


def test_dora_drift_is_the_merged_weight_minus_the_base() -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(Toy(), LoraConfig(r=1, lora_alpha=1, target_modules=["fc"], use_dora=True))
    assert parameter_drift(model, StartWeights.take(model))["total"]["drift"] == pytest.approx(0.0, abs=1e-6)
    fc0 = model.base_model.model.blocks[0].fc
    with torch.no_grad():
        fc0.lora_B["default"].weight.fill_(0.5)
        fc0.lora_magnitude_vector["default"].weight.mul_(2.0)  # DoRA learned to double every column
    with torch.no_grad():
        expected = fc0.lora_variant["default"].merge_safe(fc0, "default", torch.eye(2)) - torch.eye(2)
    drift = parameter_drift(model, StartWeights.take(model))
    assert by(drift["cells"], block="0")["drift"] == pytest.approx(float(expected.norm()))
    assert float(expected.norm()) > 1.0
