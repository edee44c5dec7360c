"""transformers.Trainer with forgetless's methods plugged in: loss terms and parameter groups.

Trainer keeps the loop, the optimizer, mixed precision, checkpoints and distributed training. This
subclass only (1) adds each method's penalty to the loss, scaled so that it counts once per
optimizer step whatever the gradient accumulation, and (2) lets a method supply the optimizer's
parameter groups (layer-wise learning rates).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

from forgetless.errors import ForgetlessError
from forgetless.methods.base import Method


class ForgetlessTrainer(Trainer):
    def __init__(self, *args: Any, methods: list[Method], **kwargs: Any) -> None:
        self.methods = methods
        self._penalty_sums: dict[str, torch.Tensor] = {}
        self._penalty_steps = 0
        super().__init__(*args, **kwargs)

    def _loss_scaled_for_accumulation(self, num_items_in_batch: Any) -> bool:
        # Mirrors Trainer.training_step: when True, Trainer will not divide the loss by the number
        # of accumulation steps, so a per-step penalty must be divided here.
        if self.loss_is_scaled_for_ga is not None:
            return bool(self.loss_is_scaled_for_ga)
        return (
            bool(self.model_accepts_loss_kwargs and num_items_in_batch is not None)
            or self.compute_loss_func is not None
        )

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if not torch.isfinite(loss.detach()).all():
            raise ForgetlessError(
                f"the training loss became {loss.item()} at step {self.state.global_step + 1}",
                "lower the learning rate or check the data; checkpoints up to the last save are kept, "
                "continue from them with --resume",
            )
        if model.training:
            bare = self.accelerator.unwrap_model(model)
            terms = []
            for method in self.methods:
                term = method.penalty(bare, inputs, outputs)
                if term is not None:
                    name = method.config.name
                    self._penalty_sums[name] = self._penalty_sums.get(name, 0.0) + term.detach()
                    terms.append(term)
            if terms:
                self._penalty_steps += 1
                total = torch.stack([t.to(loss.dtype) for t in terms]).sum()
                if self._loss_scaled_for_accumulation(num_items_in_batch):
                    total = total / self.current_gradient_accumulation_steps
                loss = loss + total
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, model: Any = None) -> Any:
        target = model if model is not None else self.model
        groups = [g for m in self.methods if (g := m.parameter_groups(target, self.args.learning_rate)) is not None]
        if not groups:
            return super().create_optimizer(model) if model is not None else super().create_optimizer()
        if len(groups) > 1:
            raise ValueError("two methods both define optimizer parameter groups")
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, target)
        optimizer_kwargs.pop("lr", None)  # every group carries its own learning rate
        # Groups that do not set weight decay get the run's, not the optimizer's own default.
        param_groups = [{"weight_decay": self.args.weight_decay, **g} for g in groups[0]]
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        # Penalties are averaged over the steps since the last log, beside Trainer's own loss.
        if self._penalty_steps and "loss" in logs:
            for name, total in self._penalty_sums.items():
                logs[f"penalty/{name}"] = round(float(total) / self._penalty_steps, 6)
            self._penalty_sums, self._penalty_steps = {}, 0
        super().log(logs, *args, **kwargs)
