"""transformers.Trainer with forgetless's methods plugged in: loss terms and parameter groups.

Trainer keeps the loop, the optimizer, mixed precision, checkpoints and distributed training. This
subclass only (1) adds each method's penalty to the loss, scaled so that it counts once per
optimizer step whatever the gradient accumulation, and (2) lets a method supply the optimizer's
parameter groups (layer-wise learning rates).

Methods that can add their penalty's gradient straight into `.grad` (L2-SP, EWC: `add_penalty_grad`)
do so after each backward pass instead, which avoids backpropagating a model-sized penalty. That
happens after Trainer's backward (and DDP's gradient averaging), before clipping and the optimizer
step; every rank adds the same term to the same averaged gradient, so ranks stay in step. Under
DeepSpeed or FSDP, whose gradients are sharded, every penalty goes through autograd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from forgetless.errors import ForgetlessError
from forgetless.methods.base import Method
from forgetless.paths import DISK_FULL
from forgetless.train.checkpoints import last_complete, set_aside_diverged


def overrides(method: Method, hook: str) -> bool:
    """Whether `method`'s class defines `hook` itself rather than inheriting Method's default."""
    return getattr(type(method), hook) is not getattr(Method, hook)


class ForgetlessTrainer(Trainer):
    def __init__(self, *args: Any, methods: list[Method], **kwargs: Any) -> None:
        self.methods = methods
        self._penalty_sums: dict[str, torch.Tensor] = {}
        self._penalty_steps = 0
        self._records = 0
        super().__init__(*args, **kwargs)
        sharded = self.is_deepspeed_enabled or self.is_fsdp_enabled
        self.direct = [] if sharded else [m for m in methods if overrides(m, "add_penalty_grad")]

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
            raise self._diverged(model, loss)
        if model.training:
            bare = self.accelerator.unwrap_model(model)
            terms = []
            for method in self.methods:
                term = None if method in self.direct else method.penalty(bare, inputs, outputs)
                if term is not None:
                    self._record(method, term)
                    terms.append(term)
            if terms:
                total = torch.stack([t.to(loss.dtype) for t in terms]).sum()
                if self._loss_scaled_for_accumulation(num_items_in_batch):
                    total = total / self.current_gradient_accumulation_steps
                loss = loss + total
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        records = self._records
        loss = super().training_step(model, inputs, num_items_in_batch)
        restores = [r for m in self.methods if (r := m.perturb(self.accelerator.unwrap_model(model))) is not None]
        if restores:  # sharpness-aware: the optimizer steps with the gradient at the moved weights
            if self.current_gradient_accumulation_steps != 1:
                raise ForgetlessError(
                    "sam needs gradient accumulation 1 (its ascent step uses the whole batch's gradient)",
                    "set training.gradient_accumulation: 1 and raise batch_size instead",
                )
            model.zero_grad(set_to_none=False)
            super().training_step(model, inputs, num_items_in_batch)
            for restore in reversed(restores):
                restore()
        if self.direct:
            # Trainer averages the LM gradient over the accumulation steps; each micro-batch adds its
            # share of the penalty's, times the fp16 loss scale when the gradients carry one.
            scale = 1.0 / self.current_gradient_accumulation_steps
            scaler = getattr(self.accelerator, "scaler", None)
            if scaler is not None and scaler.is_enabled():
                scale *= float(scaler.get_scale())
            for method in self.direct:
                value = method.add_penalty_grad(scale)
                if value is not None:
                    self._record(method, value)
                    # The reported loss includes the penalty, as when it goes through autograd.
                    loss = loss + value.to(loss.device, loss.dtype) / self.current_gradient_accumulation_steps
        if self._records > records:  # a step with penalties: they are logged as per-step averages
            self._penalty_steps += 1
        return loss

    def _diverged(self, model: Any, loss: torch.Tensor) -> ForgetlessError:
        """The error for a non-finite loss; the checkpoint of the weights that gave it is set aside.

        The loss at step s+1 is computed on the weights after step s, so checkpoint-s (if saved) holds
        diverged weights and every earlier checkpoint was followed by a finite loss.
        """
        step = self.state.global_step
        moved = set_aside_diverged(Path(self.args.output_dir), step)
        kept = last_complete(Path(self.args.output_dir), before=step)
        weights = [p.detach() for p in model.parameters() if p.numel()]
        if all(bool(torch.isfinite(w).all()) for w in weights):
            state = f"largest |weight| now {max(float(w.abs().max()) for w in weights):.2g}"
        else:
            state = "the weights now hold NaN or inf"
        problem = f"the training loss became {loss.item()} at step {step + 1} ({state})"
        if moved:
            problem += f"; {', '.join(moved)} held those weights and was set aside"
        where = (
            f"{kept.name} in {kept.parent}, the last checkpoint followed by a finite loss, is kept: --resume "
            "continues from it with the same settings (which diverge again unless the cause was a one-off)"
            if kept
            else "no checkpoint from before the divergence is kept"
        )
        return ForgetlessError(
            problem,
            f"lower training.learning_rate (now {self.args.learning_rate:g}) or check the data, then start over "
            f"with --fresh; {where}",
        )

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        try:
            super()._save_checkpoint(model, trial)
        except OSError as error:
            if error.errno not in DISK_FULL:
                raise
            folder = Path(self.args.output_dir)
            kept = last_complete(folder, before=self.state.global_step)
            start = f"from {kept.name}, the last complete checkpoint" if kept else "from the start of this stage"
            raise ForgetlessError(
                f"the disk filled up while saving checkpoint-{self.state.global_step} in {folder} ({error})",
                f"free space on that disk, then continue with --resume: it skips the cut-off checkpoint and "
                f"resumes {start}",
            ) from error

    def _record(self, method: Method, value: torch.Tensor) -> None:
        name = method.config.name
        self._penalty_sums[name] = self._penalty_sums.get(name, 0.0) + value.detach()
        self._records += 1

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
