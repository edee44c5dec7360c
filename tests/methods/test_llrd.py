"""Layer-wise learning-rate decay, and the depth split (embeddings / blocks / top) it rests on."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from torch import nn
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

import forgetless.methods.freeze  # noqa: F401  (registers the methods)
import forgetless.methods.llrd  # noqa: F401
import forgetless.methods.lora  # noqa: F401
from forgetless.methods import TrainContext
from forgetless.methods.blocks import split_by_depth
from forgetless.methods.llrd import LlrdConfig, depth_rates
from tests.methods.forgetting_setup import Outcome, fine_tune_new, make

CONTEXT = TrainContext(tokenizer=None)


def named_groups(model: nn.Module, groups: list[dict]) -> dict[str, tuple[float, set[str]]]:
    """Each group's name -> (lr, names of its parameters)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {g["name"]: (g["lr"], {names[id(p)] for p in g["params"]}) for g in groups}


def test_depth_rates_worked_example() -> None:
    assert depth_rates(2, 1.0, 0.5) == {"top": 1.0, "block.0": 0.25, "block.1": 0.5, "embeddings": 0.125}
    assert set(depth_rates(3, 2e-4, 1.0).values()) == {2e-4}  # decay 1 is plain fine-tuning


def test_groups_of_a_two_block_model_get_exact_rates(tiny_model: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    groups = make("llrd", decay=0.5).parameter_groups(model, 1e-3)
    by_name = named_groups(model, groups)
    layer = {n for n, _ in model.named_parameters() if n.startswith("model.layers.")}
    assert by_name == {
        "llrd/top": (1e-3, {"model.norm.weight", "lm_head.weight"}),
        "llrd/embeddings": (1e-3 * 0.125, {"model.embed_tokens.weight"}),
        "llrd/block.0": (1e-3 * 0.25, {n for n in layer if n.startswith("model.layers.0.")}),
        "llrd/block.1": (1e-3 * 0.5, {n for n in layer if n.startswith("model.layers.1.")}),
    }
    # Every trainable parameter is in exactly one group.
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters()) and len(set(grouped)) == len(grouped)


def test_only_trainable_parameters_are_grouped(tiny_model: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    make("freeze", part="first_n", n=1).prepare_model(model, CONTEXT)
    assert set(named_groups(model, make("llrd").parameter_groups(model, 1.0))) == {"llrd/top", "llrd/block.1"}
    # With LoRA the adapters are the trainable parameters, and each takes its block's rate.
    peft_model = make("lora").prepare_model(AutoModelForCausalLM.from_pretrained(tiny_model), CONTEXT)
    by_name = named_groups(peft_model, make("llrd", decay=0.5).parameter_groups(peft_model, 1.0))
    assert set(by_name) == {"llrd/block.0", "llrd/block.1"}
    assert by_name["llrd/block.0"][0] == 0.25 and all("lora_" in n for n in by_name["llrd/block.0"][1])
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert by_name["llrd/block.0"][1] | by_name["llrd/block.1"][1] == trainable


@pytest.mark.parametrize("decay", [0, -0.5, 1.2])
def test_decay_outside_zero_one_is_rejected(decay: float) -> None:
    with pytest.raises(ValidationError) as caught:
        LlrdConfig(decay=decay)
    assert caught.value.errors()[0]["loc"] == ("decay",)


def test_strong_decay_forgets_less_and_still_learns(old_base: Path, plain: Outcome, tmp_path: Path) -> None:
    # Measured over seeds 0-2 and the CPU kernel settings (bench/behaviour_margins.py):
    # forgetting 0.41-0.68x plain's (0.44-0.46 at seed 0 under every kernel), gain 0.99x.
    run = fine_tune_new(old_base, [make("llrd", decay=0.5)], tmp_path)
    assert run.forgetting < 0.85 * plain.forgetting
    assert run.gain > 0.5 * plain.gain


def test_depth_split_handles_tied_heads_and_position_embeddings() -> None:
    tiny = {"vocab_size": 50, "max_position_embeddings": 16}
    llama = LlamaForCausalLM(
        LlamaConfig(**tiny, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
                    tie_word_embeddings=True)
    )  # fmt: skip
    depths = split_by_depth(llama)
    assert len(depths) == 3
    # The tied head is the embedding tensor: it counts once, as embeddings.
    assert (
        depths.embeddings == [llama.model.embed_tokens.weight]
        and llama.lm_head.weight is llama.model.embed_tokens.weight
    )
    assert depths.top == [llama.model.norm.weight]
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2))
    depths = split_by_depth(gpt2)
    assert {id(p) for p in depths.embeddings} == {id(gpt2.transformer.wte.weight), id(gpt2.transformer.wpe.weight)}
    assert {id(p) for p in depths.top} == {id(p) for p in gpt2.transformer.ln_f.parameters()}


class Toy(nn.Module):
    """A plain nn.Module keeping its blocks in a ModuleList; a short unrelated list must not be taken for them."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.adapters = nn.ModuleList([nn.Linear(8, 8), nn.ReLU()])  # mixed classes: not a block list
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(3))
        self.head = nn.Linear(8, 10)


def test_llrd_on_a_plain_module() -> None:
    model = Toy()
    by_name = named_groups(model, make("llrd", decay=0.5).parameter_groups(model, 1.0))
    assert by_name == {
        "llrd/top": (1.0, {"adapters.0.weight", "adapters.0.bias", "head.weight", "head.bias"}),
        "llrd/embeddings": (0.0625, {"embed.weight"}),
        **{f"llrd/block.{i}": (0.5 ** (3 - i), {f"blocks.{i}.0.weight", f"blocks.{i}.0.bias"}) for i in range(3)},
    }
