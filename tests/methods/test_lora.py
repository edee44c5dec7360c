"""LoRA through PEFT: forgets less than full fine-tuning, never writes the base, checks QLoRA's needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from transformers import AutoModelForCausalLM

import forgetless.methods.lora  # noqa: F401  (registers the method)
from forgetless.errors import ForgetlessError
from forgetless.methods import TrainContext
from forgetless.methods.lora import LoraConfig, quantization
from tests.methods.forgetting_setup import Outcome, fine_tune_new, make


@pytest.fixture(scope="module")
def lora_run(old_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    # Hu et al.'s original targets (the attention's query and value), same lr and steps as plain.
    method = make("lora", target_modules=["q_proj", "v_proj"])
    return fine_tune_new(old_base, [method], tmp_path_factory.mktemp("lora"))


def test_lora_forgets_less_than_full_fine_tuning_and_still_learns(lora_run: Outcome, plain: Outcome) -> None:
    # Measured over seeds 0-2 and the CPU kernel settings (bench/behaviour_margins.py):
    # forgetting 0.05-0.47x plain's, gain 0.69-0.72x.
    assert lora_run.forgetting < 0.7 * plain.forgetting
    assert lora_run.gain > 0.2 * plain.gain


def test_lora_never_writes_the_base_weights(lora_run: Outcome, old_base: Path) -> None:
    base = AutoModelForCausalLM.from_pretrained(old_base).eval()
    tuned = lora_run.model.eval()
    ids = torch.tensor([[5, 17, 42, 7, 99, 3]])
    with torch.no_grad():
        expected = base(input_ids=ids).logits
        adapted = tuned(input_ids=ids).logits
        with tuned.disable_adapter():
            bare = tuned(input_ids=ids).logits
    assert not torch.allclose(adapted, expected)  # the adapters learned something
    assert torch.equal(bare, expected)  # and without them the model is the base, bit for bit


def test_lora_trains_only_adapters_on_every_linear_layer_by_default(tiny_model: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    peft_model = make("lora").prepare_model(model, TrainContext(tokenizer=None))
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names}
    # "all-linear" covers attention and MLP but leaves the output head alone.
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_dora_adds_a_trainable_magnitude(tiny_model: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    peft_model = make("lora", use_dora=True, r=4).prepare_model(model, TrainContext(tokenizer=None))
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lora_magnitude_vector" in n for n in names)
    assert peft_model.peft_config["default"].r == 4


@pytest.mark.parametrize("field,value", [("r", 0), ("r", -2), ("alpha", 0), ("dropout", -0.1), ("dropout", 1.0)])
def test_bad_numbers_are_rejected_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as caught:
        LoraConfig(**{field: value})
    assert caught.value.errors()[0]["loc"] == (field,)
    assert field in str(caught.value)


def test_quantize_without_bitsandbytes_or_gpu_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tiny_model: Path
) -> None:
    monkeypatch.setattr(forgetless.methods.lora, "_has_bitsandbytes", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    method = make("lora", quantize="4bit")
    problems = method.validate([])
    assert len(problems) == 2
    assert "needs the bitsandbytes package" in problems[0] and "pip install bitsandbytes" in problems[0]
    assert "needs a CUDA GPU" in problems[1] and "drop `quantize`" in problems[1]
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with pytest.raises(ForgetlessError, match="bitsandbytes package") as caught:
        method.prepare_model(model, TrainContext(tokenizer=None))
    assert "fix: install bitsandbytes" in str(caught.value)
    assert make("lora").validate([]) == []  # plain LoRA needs neither


def test_quantize_needs_the_model_loaded_quantized(monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> None:
    # With the packages and GPU present, an unquantized base is the remaining mistake.
    monkeypatch.setattr(forgetless.methods.lora, "_has_bitsandbytes", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with pytest.raises(ForgetlessError, match="model was loaded unquantized") as caught:
        make("lora", quantize="8bit").prepare_model(model, TrainContext(tokenizer=None))
    assert "quantization('8bit')" in str(caught.value)
    config = quantization("4bit")
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4"


class Toy(nn.Module):
    """A plain nn.Module (no transformers): PEFT adapts the layers it is told to."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def test_lora_on_a_plain_module_adapts_the_named_layers() -> None:
    torch.manual_seed(0)
    model, x = Toy(), torch.randn(5, 8)
    before = model(x).detach()
    peft_model = make("lora", target_modules=["fc1"], dropout=0.0).prepare_model(model, TrainContext(tokenizer=None))
    assert {n for n, p in peft_model.named_parameters() if p.requires_grad} == {
        "base_model.model.fc1.lora_A.default.weight",
        "base_model.model.fc1.lora_B.default.weight",
    }
    optimizer = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        peft_model(x).pow(2).sum().backward()
        optimizer.step()
    assert not torch.allclose(peft_model(x), before)
    with peft_model.disable_adapter():
        assert torch.equal(peft_model(x), before)


def test_all_linear_on_a_plain_module_asks_for_names() -> None:
    with pytest.raises(ForgetlessError, match="'all-linear' works only on transformers models") as caught:
        make("lora").prepare_model(Toy(), TrainContext(tokenizer=None))
    assert "target_modules: [fc1, fc2]" in str(caught.value)
