"""Distillation to the base model (Learning without Forgetting, Li & Hoiem 2017, for LMs).

Adds weight * T^2 * KL(p_base || p_model) of the next-token distributions at temperature T,
averaged over the batch's real (non-padding) tokens, so the model keeps predicting like the base
wherever the training data does not pull it away. With LoRA the base is the same model with its
adapters disabled (no second copy in memory); otherwise a frozen copy is kept.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext


class DistillConfig(MethodConfig):
    name: str = "distill"
    weight: float = Field(default=1.0, gt=0, description="multiplier of the KL term")
    temperature: float = Field(default=2.0, gt=0, description="softens both distributions (Hinton et al. 2015)")


def _is_peft(model: Any) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@METHODS.register("distill")
class Distill(Method):
    config_class = DistillConfig
    config: DistillConfig

    def __init__(self, config: DistillConfig) -> None:
        super().__init__(config)
        self.teacher: Any = None

    def validate(self, others: list[str]) -> list[str]:
        if "lora" in others and others.index("lora") > others.index(self.config.name):
            return ["list `lora` before `distill`, so distillation uses the base with adapters disabled, not a copy"]
        return []

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        if not _is_peft(model):
            self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        return model

    @torch.no_grad()
    def _teacher_logits(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        batch = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        if self.teacher is not None:
            return self.teacher(**batch).logits
        with model.disable_adapter():
            return model(**batch).logits

    def penalty(self, model: Any, inputs: dict[str, Any], outputs: Any) -> torch.Tensor:
        t = self.config.temperature
        student = outputs.logits.float() / t
        teacher = self._teacher_logits(model, inputs).float() / t
        kl = F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True, reduction="none").sum(-1)
        mask = inputs.get("attention_mask")
        mask = torch.ones_like(kl) if mask is None else mask.to(kl.dtype)
        return self.config.weight * t * t * (kl * mask).sum() / mask.sum().clamp(min=1)

    def finish(self, model: Any, context: TrainContext) -> Any:
        self.teacher = None  # free the copy once training is over
        return model
