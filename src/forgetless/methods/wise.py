"""WiSE-FT: interpolate the fine-tuned weights with the base weights after training.

Wortsman et al. 2022, "Robust fine-tuning of zero-shot models": theta = (1 - alpha) * theta_0 +
alpha * theta_tuned. alpha = 1 keeps the fine-tune, alpha = 0 the base; in between trades target
gain for retention, often better than either end. For a LoRA adapter the same interpolation is a
scaling of the adapter's update: B is multiplied by alpha (the update is scale * B @ A).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext, trainable
from forgetless.models.interpolate import check_linear_adapter, interpolate_, lora_b, scale_lora_


class WiseConfig(MethodConfig):
    name: str = "wise"
    alpha: float = Field(default=0.5, ge=0, le=1, description="weight of the fine-tuned model (1 = no interpolation)")


@METHODS.register("wise")
class Wise(Method):
    config_class = WiseConfig
    config: WiseConfig

    def __init__(self, config: WiseConfig) -> None:
        super().__init__(config)
        self.anchor: dict[str, torch.Tensor] = {}

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        # Only trainable weights can move, so only they need a copy of their starting values.
        self.anchor = {name: p.detach().clone() for name, p in trainable(model)}
        return model

    def finish(self, model: Any, context: TrainContext) -> Any:
        if lora_b(model):
            check_linear_adapter(model, "use plain LoRA, or drop `wise`")
            scale_lora_(model, self.config.alpha)
            return model
        interpolate_(model, self.anchor, self.config.alpha)  # only the trainable weights moved
        self.anchor = {}
        return model
