"""L2-SP: pull the weights back towards where fine-tuning started.

Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018. The training loss gains (alpha / 2) * sum ||theta - theta_0||^2 over the
trainable parameters, theta_0 being their values when this stage starts. Unlike weight decay, which
pulls towards zero and so erases what pre-training learned, L2-SP keeps the starting point as the
prior. Only parameters with `requires_grad` are anchored, so with a PEFT adapter listed before it
only the adapter weights are (and the anchors cost adapter-sized memory, not model-sized).

On the default alpha = 0.01: the LM loss is a per-token mean of a few nats, while the penalty is a
sum over every trainable weight. A 135M-parameter model that drifts by an RMS of 1e-3 (a typical
full fine-tune at lr 1e-5..1e-4) has ||theta - theta_0||^2 ~ 135, so the penalty is ~0.7 nats:
felt, not dominant. Its gradient alpha * (theta - theta_0) ~ 1e-5 per weight is a tenth of a
typical per-weight loss gradient (gradient norm ~1 over 1e8 weights), so it wins only where the new
task barely cares, which is where it should. Sweep alpha by decades (1e-3..1) against the budget.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from forgetless.errors import ForgetlessError
from forgetless.methods.anchors import (
    add_distance_grad,
    checked,
    follow_devices,
    snapshot,
    weighted_squared_distance,
)
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext, trainable

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class L2SPConfig(MethodConfig):
    name: str = "l2sp"
    alpha: float = Field(default=0.01, gt=0, description="strength: the loss gains (alpha/2) * ||theta - theta_0||^2")
    anchor_dtype: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="dtype of the stored theta_0; bfloat16 halves its memory (rounds it to ~3 digits)",
    )


@METHODS.register("l2sp")
class L2SP(Method):
    """(alpha / 2) * sum over trainable parameters of ||theta - theta_0||^2 (Li et al., ICML 2018)."""

    config_class = L2SPConfig
    config: L2SPConfig

    def __init__(self, config: L2SPConfig) -> None:
        super().__init__(config)
        self.anchor_names: list[str] = []  # which parameters are held, for inspection and tests
        self._params: list[torch.Tensor] = []
        self._anchors: list[torch.Tensor] = []

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        named = trainable(model)
        if not named:
            raise ForgetlessError(
                "l2sp found no trainable parameters to anchor (every parameter has requires_grad=False)",
                "list l2sp after the methods that choose what trains (lora, freezing), or drop l2sp",
            )
        self.anchor_names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._anchors = snapshot(self._params, DTYPES[self.config.anchor_dtype])
        return model

    def penalty(self, model: Any, inputs: dict[str, torch.Tensor], outputs: Any) -> torch.Tensor:
        self._ready("penalty")
        distance = weighted_squared_distance(self._params, self._anchors)
        return checked(0.5 * self.config.alpha * distance, "l2sp")

    def add_penalty_grad(self, scale: float) -> torch.Tensor:
        self._ready("add_penalty_grad")  # d/dtheta (alpha/2)||theta - theta_0||^2 = alpha (theta - theta_0)
        distance = add_distance_grad(self._params, self._anchors, None, self.config.alpha * scale)
        return checked(0.5 * self.config.alpha * distance, "l2sp")

    def _ready(self, hook: str) -> None:
        if not self._params:
            raise RuntimeError(f"l2sp.{hook} was called before l2sp.prepare_model took the anchors")
        follow_devices(self._anchors, self._params)

    def finish(self, model: Any, context: TrainContext) -> Any:
        self._params, self._anchors = [], []  # free the snapshot once training is over
        return model
