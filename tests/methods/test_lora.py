"""LoRA through PEFT: forgets less than full fine-tuning, never writes the base, takes PEFT's own settings."""

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
from forgetless.methods.lora import LoraConfig
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


@pytest.mark.parametrize(
    "field,value",
    [("r", 0), ("r", -2), ("alpha", 0), ("lora_alpha", 0), ("dropout", -0.1), ("lora_dropout", 1.0)],
)
def test_bad_numbers_are_rejected_naming_the_field(field: str, value: float) -> None:
    # `alpha` and `dropout` (forgetless's first names) are PEFT's lora_alpha and lora_dropout; an error names
    # the key as written.
    with pytest.raises(ValidationError) as caught:
        LoraConfig(**{field: value})
    assert caught.value.errors()[0]["loc"] == (field,)
    assert field in str(caught.value)


def test_old_names_are_peft_names_and_both_at_once_is_refused() -> None:
    assert LoraConfig(alpha=32, dropout=0.1).model_dump() == LoraConfig(lora_alpha=32, lora_dropout=0.1).model_dump()
    assert "alpha" not in LoraConfig(alpha=32).model_dump()  # the resolved config says it PEFT's way
    with pytest.raises(ValidationError, match="says what lora_alpha says"):
        LoraConfig(alpha=32, lora_alpha=16)


def test_peft_fields_pass_through_to_peft(tiny_model: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    method = make(
        "lora", lora_alpha=32, target_modules=["q_proj", "v_proj"], use_rslora=True, modules_to_save=["lm_head"]
    )
    peft_model = method.prepare_model(model, TrainContext(tokenizer=None))
    config = peft_model.peft_config["default"]
    assert (config.lora_alpha, set(config.target_modules), config.use_rslora) == (32, {"q_proj", "v_proj"}, True)
    assert config.modules_to_save == ["lm_head"]
    assert any("modules_to_save" in n for n, p in peft_model.named_parameters() if p.requires_grad)


def test_unknown_and_owned_peft_keys_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ValidationError) as caught:
        LoraConfig(lora_alfa=3, use_rslora=True, task_type="CAUSAL_LM")
    errors = {e["loc"]: e for e in caught.value.errors()}
    assert errors[("lora_alfa",)]["type"] == "extra_forbidden"
    assert "forgetless chooses it from the model" in errors[("task_type",)]["msg"]
    from forgetless.registry import unknown_key_hint

    assert unknown_key_hint(LoraConfig, ("lora_alfa",)) == "; did you mean 'lora_alpha'?"
    assert unknown_key_hint(LoraConfig, ("init_lora_weight",)) == "; did you mean 'init_lora_weights'?"


def test_peft_checks_the_values_at_validation() -> None:
    # PEFT's own __post_init__ refuses this combination; forgetless reports it before any model loads.
    method = make("lora", use_dora=True, lora_bias=True)
    problems = method.validate([])
    assert len(problems) == 1 and problems[0].startswith("peft's LoraConfig refuses these settings:")
    assert "lora_bias=True is not supported for DoRA" in problems[0]
    assert make("lora", use_rslora=True).validate([]) == []


def test_quantize_moved_to_the_model_with_the_exact_replacement() -> None:
    with pytest.raises(ValidationError) as caught:
        LoraConfig(quantize="4bit")
    (error,) = caught.value.errors()
    assert error["loc"] == ("quantize",)
    assert "model: {path: ..., quantization: {load_in_4bit: true, bnb_4bit_quant_type: nf4" in error["msg"]


def test_a_base_loaded_quantized_is_prepared_for_kbit_training(tiny_model: Path) -> None:
    # bitsandbytes needs CUDA, so the flag transformers sets on a 4-bit model stands in for the load here:
    # the method must then run PEFT's preparation (which turns on gradient checkpointing) before the adapters.
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    plain = make("lora").prepare_model(model, TrainContext(tokenizer=None))
    assert not plain.base_model.model.is_gradient_checkpointing
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    model.is_loaded_in_4bit = True
    peft_model = make("lora").prepare_model(model, TrainContext(tokenizer=None))
    assert peft_model.base_model.model.is_gradient_checkpointing


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
    peft_model = make("lora", target_modules=["fc1"], lora_dropout=0.0).prepare_model(
        model, TrainContext(tokenizer=None)
    )
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
