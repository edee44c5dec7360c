"""Gradual unfreezing: train the top first, then let each lower layer join, one at a time.

ULMFiT (Howard & Ruder, 2018, "Universal Language Model Fine-tuning for Text Classification")
unfreezes the last layer first and one more layer down every epoch, so the general features near the
input move only after the top has adapted and the gradients reaching them are small. Here the unit
is optimizer steps: the output head (and final norm) always train, `start_trainable` blocks from the
top (default none) train from the start, and every `every` steps the next block down is unfrozen; the
embeddings come last. By default the unfreezings are spread evenly so that the whole model trains for the
final stretch.

It runs as a `transformers.TrainerCallback`: Trainer builds the optimizer from every trainable
parameter before `on_train_begin`, where the lower layers are frozen; a frozen parameter gets no
gradient and AdamW skips it, so unfreezing needs no new optimizer. Under DDP, parameters without a
gradient make the reducer fail: set `ddp_find_unused_parameters=True` in the training arguments.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import Field

from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext
from forgetless.methods.blocks import split_by_depth


class UnfreezeConfig(MethodConfig):
    name: str = "unfreeze"
    every: int | None = Field(
        None, gt=0, description="optimizer steps between unfreezings; default spreads them evenly over the run"
    )
    # 0 is ULMFiT's order for a language model: its "last layer" is the output head, which trains alone first.
    start_trainable: int = Field(0, ge=0, description="blocks trainable from the start, counted from the top")


def trainable_levels(step: int, levels: int, every: int, start_trainable: int) -> int:
    """How many levels, counted from the top, train at optimizer step `step` (0-based).

    Levels are the blocks from the top down, then the embeddings (`levels` = blocks + 1); the head is
    not a level because it always trains. Example: 2 blocks, every 10, start 1 -> steps 0-9: 1 (top
    block), 10-19: 2 (both blocks), from 20: 3 (embeddings too).
    """
    return min(levels, start_trainable + step // every)


def default_every(total_steps: int, levels: int, start_trainable: int) -> int:
    """Steps between unfreezings that leave as long a stretch after the last one as between each."""
    return max(1, total_steps // (levels - start_trainable + 1))


@cache
def _callback_class() -> type:
    # Built on first use: importing transformers when forgetless is imported would slow every command.
    from transformers import TrainerCallback

    class GradualUnfreezing(TrainerCallback):
        def __init__(self, config: UnfreezeConfig) -> None:
            self.config = config
            self.levels: list[list[Any]] = []
            self.every = 1

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            depths = split_by_depth(model)
            # Only what is trainable now is scheduled: parameters frozen by another method (LoRA's
            # base weights, freeze) stay frozen, and every scheduled one is already in the optimizer.
            order = [*reversed(depths.blocks), depths.embeddings]
            self.levels = [[p for p in params if p.requires_grad] for params in order]
            start = self.config.start_trainable
            self.every = self.config.every or default_every(state.max_steps, len(self.levels), start)
            self._apply(state.global_step)  # global_step > 0 when resuming from a checkpoint

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._apply(state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # Leave every scheduled parameter trainable, even if the run ended before the schedule
            # did: a next stage builds its optimizer from trainable parameters only, and would
            # otherwise never update the layers still frozen here.
            self._apply(None)

        def _apply(self, step: int | None) -> None:
            n = len(self.levels)
            if step is not None:
                n = trainable_levels(step, n, self.every, self.config.start_trainable)
            for depth, params in enumerate(self.levels):
                for p in params:
                    p.requires_grad_(depth < n)

    return GradualUnfreezing


@METHODS.register("unfreeze")
class Unfreeze(Method):
    """Gradual unfreezing from the top down, on a schedule of optimizer steps (see the module docstring)."""

    config_class = UnfreezeConfig
    config: UnfreezeConfig

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        # Checked here, before training starts, rather than in the callback mid-setup.
        levels = len(split_by_depth(model)) + 1
        if self.config.start_trainable >= levels:
            raise ForgetlessError(
                f"unfreeze: start_trainable is {self.config.start_trainable} but the model has only "
                f"{levels - 1} blocks and the embeddings: nothing would ever be frozen",
                f"use start_trainable below {levels}, or the method 'full'",
            )
        return model

    def callbacks(self, context: TrainContext) -> list[Any]:
        return [_callback_class()(self.config)]
