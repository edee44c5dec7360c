"""The contract every mitigation follows: a typed config and a few hooks that return values.

The training loop (transformers.Trainer, through `train.trainer`) calls each hook of each
configured method directly, in the order the methods are listed; hooks never reach into shared
state. A method overrides only the hooks it needs; the contract test rejects any other public
name on a method, so a misspelled hook is an error rather than a silent no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

from forgetless.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")


class MethodConfig(BaseModel):
    """Fields common to every method; each method adds its own, with bounds and descriptions."""

    model_config = ConfigDict(extra="forbid")

    name: str


@dataclass
class TrainContext:
    """What hooks may read: the run's tokenizer, the data to keep (for Fisher, replay, distillation),
    the stage being trained, and a folder for state that must survive a resume."""

    tokenizer: Any
    keep_texts: list[str] = field(default_factory=list)  # general text the model must not forget
    # The keep data streamed (a `datasets.IterableDataset` with `text`), when it is; keep_texts then holds its
    # first texts, and replay draws from the stream itself.
    keep_stream: Any = None
    # For a model that is not a language model (a classifier): (inputs, targets) batches of what must
    # not be forgotten, such as earlier tasks' data; EWC estimates its Fisher on these when given.
    keep_batches: list[tuple[Any, torch.Tensor]] = field(default_factory=list)
    stage: int = 0
    seed: int = 0
    # What methods report about a stage (e.g. genreplay: texts generated and kept, seconds), by method
    # name; the run keeps it in the stage's training results.
    notes: dict[str, Any] = field(default_factory=dict)
    state_dir: Path | None = None
    max_length: int = 256
    batch_size: int = 8
    total_steps: int = 0


class Method:
    """A mitigation. Subclasses set `config_class` and override only the hooks they need."""

    config_class: type[MethodConfig] = MethodConfig
    hooks = (
        "prepare_model",
        "parameter_groups",
        "training_data",
        "penalty",
        "add_penalty_grad",
        "perturb",
        "callbacks",
        "end_stage",
        "finish",
        "validate",
    )

    def __init__(self, config: MethodConfig) -> None:
        self.config = config

    def validate(self, others: list[str]) -> list[str]:
        """Problems with this method next to the `others` listed in the same run (before any load)."""
        return []

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        """Return the model to train (frozen parts, an adapter, a snapshot of anchors...)."""
        return model

    def parameter_groups(self, model: Any, learning_rate: float) -> list[dict[str, Any]] | None:
        """Optimizer parameter groups, or None to let Trainer build them."""
        return None

    def training_data(self, dataset: Any, context: TrainContext) -> Any:
        """The `datasets.Dataset` (a `text` column) to train on; replay mixes kept data in here."""
        return dataset

    def penalty(self, model: Any, inputs: dict[str, torch.Tensor], outputs: Any) -> torch.Tensor | None:
        """A term added to the training loss of every step, or None."""
        return None

    def add_penalty_grad(self, scale: float) -> torch.Tensor | None:
        """Add `scale` times the gradient of `penalty` into the parameters' `.grad` in place, and return
        the penalty's value (detached); None when the method has no such shortcut.

        A method that overrides this is called after each backward pass instead of having `penalty`
        backpropagated, when the parameters' `.grad` are plain tensors (not under DeepSpeed or FSDP,
        which shard them); the two must give the same update. It saves the autograd graph of a
        model-sized penalty, which is most of an anchor regularizer's cost on a CPU.
        """
        return None

    def perturb(self, model: Any) -> Any:
        """After a step's backward pass: move the weights for a second forward and backward pass of the same
        batch, whose gradient the optimizer then uses (sharpness-aware minimization), and return the
        function that moves them back; None for no second pass."""
        return None

    def callbacks(self, context: TrainContext) -> list[Any]:
        """transformers TrainerCallbacks to add (schedules such as gradual unfreezing)."""
        return []

    def end_stage(self, model: Any, context: TrainContext) -> None:
        """After a stage: carry state to the next one (online EWC's Fisher, new anchors)."""

    def finish(self, model: Any, context: TrainContext) -> Any:
        """After training: return the model to keep (WiSE-FT interpolates here)."""
        return model


def trainable(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Parameters that receive gradients: regularizers act on these only, so adapters work too."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]
