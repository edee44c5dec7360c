"""Freezing: the chosen parameters never move, the rest learns, and impossible freezes are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from transformers import AutoModelForCausalLM

import forgetless.methods.freeze  # noqa: F401  (registers the method)
import forgetless.methods.lora  # noqa: F401
from forgetless.errors import ForgetlessError
from forgetless.methods import TrainContext
from forgetless.methods.freeze import FreezeConfig
from tests.methods.forgetting_setup import Outcome, fine_tune_new, make

CONTEXT = TrainContext(tokenizer=None)


def frozen_names(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if not p.requires_grad}


def test_freezing_the_first_block_forgets_less_and_keeps_it_bit_identical(
    old_base: Path, plain_reorder: Outcome, tmp_path: Path
) -> None:
    # The reorder task: its forgetting sits in the blocks (on arithmetic it sits in the head, which freezing
    # the bottom cannot protect: 0.97-2.15x plain there). Measured (bench/behaviour_margins.py): forgetting
    # 0.72x plain's at seed 0 under every CPU kernel setting, 0.72-0.86x over seeds 0-2; gain 0.98x.
    base = dict(AutoModelForCausalLM.from_pretrained(old_base).named_parameters())
    run = fine_tune_new(old_base, [make("freeze", part="first_n", n=1)], tmp_path, task="reorder")
    assert run.forgetting < 0.95 * plain_reorder.forgetting
    assert run.gain > 0.8 * plain_reorder.gain
    tuned = dict(run.model.named_parameters())
    frozen = frozen_names(run.model)
    assert frozen == {"model.embed_tokens.weight"} | {n for n in tuned if n.startswith("model.layers.0.")}
    assert all(torch.equal(tuned[n], base[n]) for n in frozen)
    assert not torch.equal(tuned["model.layers.1.mlp.up_proj.weight"], base["model.layers.1.mlp.up_proj.weight"])


@pytest.mark.parametrize(
    "part,n,expected",
    [
        ("embeddings", None, lambda name: name == "model.embed_tokens.weight"),
        ("first_n", 1, lambda name: name == "model.embed_tokens.weight" or name.startswith("model.layers.0.")),
        ("all_but_head", None, lambda name: name not in {"model.norm.weight", "lm_head.weight"}),
    ],
)
def test_each_part_freezes_what_it_names(tiny_model: Path, part: str, n: int | None, expected) -> None:  # noqa: ANN001
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    make("freeze", part=part, n=n).prepare_model(model, CONTEXT)
    assert frozen_names(model) == {name for name, _ in model.named_parameters() if expected(name)}


def test_first_n_needs_n_and_n_needs_first_n() -> None:
    with pytest.raises(ValidationError, match="n is required when part is 'first_n'"):
        FreezeConfig(part="first_n")
    with pytest.raises(ValidationError, match="n is used only with part 'first_n', not 'embeddings'"):
        FreezeConfig(part="embeddings", n=2)
    with pytest.raises(ValidationError) as caught:
        FreezeConfig(part="first_n", n=0)
    assert caught.value.errors()[0]["loc"] == ("n",)
    with pytest.raises(ValidationError, match="part"):
        FreezeConfig(part="head")


def test_freezing_every_block_is_refused(tiny_model: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with pytest.raises(ForgetlessError, match="n is 2 but the model has 2 blocks: freezing every block") as caught:
        make("freeze", part="first_n", n=2).prepare_model(model, CONTEXT)
    assert "part: all_but_head" in str(caught.value)
    assert not frozen_names(model)  # refused before touching the model


def test_a_freeze_that_leaves_nothing_to_train_is_refused(tiny_model: Path) -> None:
    # LoRA trains adapters inside the blocks only; freezing all but the head then leaves nothing.
    model = make("lora").prepare_model(AutoModelForCausalLM.from_pretrained(tiny_model), CONTEXT)
    trainable_before = {n for n, p in model.named_parameters() if p.requires_grad}
    with pytest.raises(ForgetlessError, match="part 'all_but_head' leaves no trainable parameter"):
        make("freeze", part="all_but_head").prepare_model(model, CONTEXT)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trainable_before


class Toy(nn.Module):
    """A plain nn.Module keeping its blocks in a ModuleList, as the depth helper expects."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(3))
        self.head = nn.Linear(8, 10)


def test_freeze_on_a_plain_module() -> None:
    model = Toy()
    make("freeze", part="first_n", n=2).prepare_model(model, CONTEXT)
    assert frozen_names(model) == {"embed.weight"} | {f"blocks.{i}.0.{k}" for i in (0, 1) for k in ("weight", "bias")}
    with pytest.raises(ForgetlessError, match="cannot find the transformer blocks of Linear"):
        make("freeze", part="all_but_head").prepare_model(nn.Linear(2, 2), CONTEXT)
    with pytest.raises(ForgetlessError, match="found no embeddings in Linear"):
        make("freeze", part="embeddings").prepare_model(nn.Linear(2, 2), CONTEXT)
