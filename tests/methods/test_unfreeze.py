"""Gradual unfreezing: the schedule as a pure function, the callback on a plain module and in Trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, TrainerControl, TrainerState

import forgetless.methods.unfreeze  # noqa: F401  (registers the method)
from forgetless.errors import ForgetlessError
from forgetless.methods import TrainContext
from forgetless.methods.unfreeze import default_every, trainable_levels
from tests.methods.forgetting_setup import NEW_STEPS, Outcome, fine_tune_new, make

CONTEXT = TrainContext(tokenizer=None)


def test_schedule_worked_example() -> None:
    # 2 blocks + embeddings = 3 levels; one block trainable at first, one more every 10 steps.
    assert [trainable_levels(s, 3, 10, 1) for s in (0, 9, 10, 19, 20, 35, 1000)] == [1, 1, 2, 2, 3, 3, 3]
    assert [trainable_levels(s, 3, 5, 0) for s in (0, 4, 5, 10, 15)] == [0, 0, 1, 2, 3]


def test_default_every_leaves_a_final_stretch_with_everything_trainable() -> None:
    assert default_every(40, 3, 0) == 10  # unfreezings at 10, 20, 30; all trainable for the last 10
    assert default_every(40, 3, 1) == 13
    assert default_every(2, 31, 0) == 1  # never zero, even on very short runs
    every = default_every(40, 3, 0)
    assert trainable_levels(NEW_STEPS - 1, 3, every, 0) == 3


def test_unfreezing_forgets_less_and_leaves_everything_trainable(
    old_base: Path, plain_reorder: Outcome, tmp_path: Path
) -> None:
    # The reorder task, where forgetting sits in the blocks (on arithmetic the head forgets, trained from the
    # start: 0.91-1.40x plain). Measured (bench/behaviour_margins.py): forgetting 0.62x plain's at seed 0 under
    # every CPU kernel setting, 0.58-0.75x over seeds 0-2; gain 0.99x.
    run = fine_tune_new(old_base, [make("unfreeze")], tmp_path, task="reorder")
    assert run.forgetting < 0.85 * plain_reorder.forgetting
    assert run.gain > 0.8 * plain_reorder.gain
    assert all(p.requires_grad for p in run.model.parameters())


def test_start_trainable_must_leave_something_to_unfreeze(tiny_model: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert make("unfreeze", start_trainable=2).prepare_model(model, CONTEXT) is model  # only embeddings wait
    with pytest.raises(ForgetlessError, match="start_trainable is 3 but the model has only 2 blocks"):
        make("unfreeze", start_trainable=3).prepare_model(model, CONTEXT)


class Toy(nn.Module):
    """A plain nn.Module keeping its blocks in a ModuleList."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(2))
        self.head = nn.Linear(8, 10)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for block in self.blocks:
            x = torch.tanh(block(x))
        return self.head(x)


def test_callback_on_a_plain_module_with_the_optimizer_built_first() -> None:
    torch.manual_seed(0)
    model = Toy()
    frozen_by_another = model.blocks[0].bias.requires_grad_(False)  # e.g. by freeze: must stay frozen
    (callback,) = make("unfreeze", every=3, start_trainable=1).callbacks(CONTEXT)
    # As in Trainer: the optimizer holds every trainable parameter before on_train_begin freezes any.
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    state, control, ids = TrainerState(max_steps=5, global_step=0), TrainerControl(), torch.tensor([[1, 2, 3]])
    callback.on_train_begin(None, state, control, model=model)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable_at = []
    for step in range(5):
        state.global_step = step
        callback.on_step_begin(None, state, control)
        trainable_at.append({n for n, p in model.named_parameters() if p.requires_grad})
        model(ids).logsumexp(-1).sum().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step == 2:  # still frozen until now: untouched, weight decay included
            assert torch.equal(model.blocks[0].weight, start["blocks.0.weight"])
    assert trainable_at[0] == {"head.weight", "head.bias", "blocks.1.weight", "blocks.1.bias"}
    assert trainable_at[3] == trainable_at[0] | {"blocks.0.weight"}
    assert not torch.equal(model.blocks[0].weight, start["blocks.0.weight"])  # unfrozen at step 3, then moved
    # The run ended (step 5) before the embeddings' turn (step 6): they never moved, yet are left
    # trainable for whatever trains next; the bias frozen by another method stays frozen.
    assert torch.equal(model.embed.weight, start["embed.weight"])
    callback.on_train_end(None, state, control)
    assert {n for n, p in model.named_parameters() if not p.requires_grad} == {"blocks.0.bias"}
    assert not frozen_by_another.requires_grad
