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

from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext, trainable


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

    @torch.no_grad()
    def finish(self, model: Any, context: TrainContext) -> Any:
        alpha = self.config.alpha
        lora_b = [(n, p) for n, p in model.named_parameters() if "lora_B" in n]
        if lora_b:
            if any(getattr(c, "use_dora", False) for c in getattr(model, "peft_config", {}).values()):
                raise ForgetlessError(
                    "wise cannot interpolate a DoRA adapter linearly", "use plain LoRA, or drop `wise`"
                )
            for _, p in lora_b:
                p.mul_(alpha)
            return model
        for name, p in model.named_parameters():
            if name in self.anchor:
                p.lerp_(self.anchor[name].to(p.device), 1 - alpha)  # p + (1 - alpha) * (anchor - p)
        self.anchor = {}
        return model
