"""Distillation to the base model (Learning without Forgetting, Li & Hoiem 2017, for LMs).

Adds weight * T^2 * KL(p_base || p_model) of the next-token distributions at temperature T,
averaged over the batch's real (non-padding) tokens, so the model keeps predicting like the base
wherever the training data does not pull it away. With LoRA the base is the same model with its
adapters disabled (no second copy in memory); otherwise a frozen copy is kept. On a plain nn.Module
classifier (inputs a tensor, outputs the logits) the same term applies to its class distribution;
`distillation_kl` is the term alone, which a class-incremental loop applies to the earlier classes only.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext


class DistillConfig(MethodConfig):
    name: str = "distill"
    weight: float = Field(default=1.0, gt=0, description="multiplier of the KL term")
    temperature: float = Field(default=2.0, gt=0, description="softens both distributions (Hinton et al. 2015)")


def distillation_kl(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)) over the last dimension, averaged over the
    other positions (those where `mask` is nonzero, when given).

    The T^2 keeps the gradient's scale independent of T (Hinton et al. 2015). Avalanche's LwF has no
    T^2 (its `alpha` is this function's weight times T^2) and averages over the batch ("batchmean").

    Args:
        student: logits (..., C) that receive the gradient.
        teacher: logits (..., C) of the model to stay close to (no gradient flows into them).
        temperature: T > 0; both distributions are softened by it.
        mask: (...) weights of the positions (an attention mask), or None for all ones.
    """
    log_p = F.log_softmax(student.float() / temperature, -1)
    log_q = F.log_softmax(teacher.detach().float() / temperature, -1)
    kl = F.kl_div(log_p, log_q, log_target=True, reduction="none").sum(-1)
    mask = torch.ones_like(kl) if mask is None else mask.to(kl.dtype)
    return temperature * temperature * (kl * mask).sum() / mask.sum().clamp(min=1)


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
    def _teacher_logits(self, model: Any, inputs: Any) -> torch.Tensor:
        if not isinstance(inputs, Mapping):  # a plain module: inputs is its input tensor, it returns logits
            return self.teacher(inputs)
        batch = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        if self.teacher is not None:
            return self.teacher(**batch).logits
        with model.disable_adapter():
            return model(**batch).logits

    def penalty(self, model: Any, inputs: Any, outputs: Any) -> torch.Tensor:
        student = getattr(outputs, "logits", outputs)
        mask = inputs.get("attention_mask") if isinstance(inputs, Mapping) else None
        teacher = self._teacher_logits(model, inputs)
        return self.config.weight * distillation_kl(student, teacher, self.config.temperature, mask)

    def finish(self, model: Any, context: TrainContext) -> Any:
        self.teacher = None  # free the copy once training is over
        return model
