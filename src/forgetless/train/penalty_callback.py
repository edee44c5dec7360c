"""ForgetPenalty: forgetless's regularizers (L2-SP, EWC, distillation) for any Trainer, as a callback.

    trainer.add_callback(ForgetPenalty("ewc", lam=1.0, keep=general_texts))

The trainer's class stays the user's (TRL's SFTTrainer, a plain Trainer), so there is no extra
forward pass: subclassing to add a loss term means asking `compute_loss` for the outputs, which
makes SFTTrainer run its forward twice. Instead the penalty enters where forgetless's own trainer
(`train.trainer.ForgetlessTrainer`) puts it, before gradient clipping:

- L2-SP and EWC add their gradient straight into `.grad` (`Method.add_penalty_grad`). Trainer fires
  `on_step_begin` before the first micro-batch's forward, with the gradients zeroed (it calls
  `model.zero_grad()` after every optimizer step), and clips only after the last micro-batch. The
  weights do not move within an optimizer step, so adding the whole penalty gradient once there sums
  to what ForgetlessTrainer adds in 1/GA shares after each micro-batch's backward (the same update up
  to float rounding; tests/integration/test_penalty_callback.py measures it). Under fp16 the
  gradients carry the GradScaler's scale, so the term is multiplied by it. Under DDP every rank adds
  the same term before the all-reduce, which averages (penalty + each rank's LM gradient) into
  penalty + the mean LM gradient. DeepSpeed and FSDP shard the gradients: refused.
- Distillation needs the student's logits of the training forward, so a forward hook adds it to the
  model output's `loss` (scaled for gradient accumulation as ForgetlessTrainer.compute_loss scales it).
  Trainer's default `compute_loss` uses that loss; a trainer that computes its own loss from other
  outputs (TRL's SFTTrainer with its fused LM head, which builds no logits) is refused at the first step.

The penalty is logged as `penalty/NAME` (averaged since the last log, as `forgetless run` logs it)
beside Trainer's `loss`, which stays the task's loss. Anchors are the weights training starts
from; with checkpoints (save_strategy != "no") the trainable ones are saved in
`output_dir/forgetless-penalty/`, so `resume_from_checkpoint` anchors at the start, not at the checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from transformers import TrainerCallback

from forgetless.distributed import is_main_process
from forgetless.errors import ConfigError, ForgetlessError
from forgetless.methods import METHODS, TrainContext, trainable
from forgetless.registry import unknown_key_hint, unknown_name_error
from forgetless.train.replay_data import keep_texts
from forgetless.train.trainer import overrides
from forgetless.train.trainer_lookup import move_to_front, tokenizer_of, trainer_of

PENALTIES = ("l2sp", "ewc", "distill")
STATE_FOLDER = "forgetless-penalty"  # under the trainer's output_dir: the start weights, for a resume
ELSEWHERE = {
    "replay": "replay is a data step: train_dataset = mix_replay(train_dataset, keep, ratio=0.2)",
    "lora": "wrap the model with peft.get_peft_model before building the trainer",
}


class ForgetPenalty(TrainerCallback):
    """Add a forgetting penalty to any transformers Trainer's loss, before gradient clipping.

    Args:
        method: "l2sp" (Li et al., ICML 2018), "ewc" (Kirkpatrick et al., PNAS 2017) or "distill"
            (Li & Hoiem 2017: KL to the base model).
        keep: general text the model must keep (a list of strings or a `datasets.Dataset` with `text`):
            EWC estimates its Fisher on it.
        max_length: tokens of each kept text the Fisher sees; by default the trainer's own `max_length`
            (TRL's configs have one) or 256, so a script and `forgetless run` with the same length agree.
        trainer: the Trainer, when it is at hand; otherwise it is found on the first event.
        **settings: the method's settings (`alpha=`, `lam=`, `fisher_samples=`, `weight=`, `temperature=`...),
            checked by its typed config: a misspelled name gets a did-you-mean.

    Raises:
        ForgetlessError: an unknown method (with a did-you-mean).
        ConfigError: every problem with the settings or `keep`, at once.
    """

    def __init__(
        self, method: str, *, keep: Any = None, max_length: int | None = None, trainer: Any = None, **settings: Any
    ) -> None:
        if method not in PENALTIES:
            if method in ELSEWHERE:
                raise ForgetlessError(f"'{method}' is not a penalty", ELSEWHERE[method])
            raise unknown_name_error("penalty", str(method), list(PENALTIES))
        cls = METHODS.get(method)
        problems: list[str] = []
        try:
            self.method = cls(cls.config_class(**{**settings, "name": method}))
        except ValidationError as error:
            for e in error.errors():
                hint = unknown_key_hint(cls.config_class, e["loc"]) if e["type"] == "extra_forbidden" else ""
                where = ".".join(str(p) for p in e["loc"])
                problems.append(f"{where}: {e['msg']} (got {e.get('input')!r:.60}){hint}")
        try:
            self.keep = keep_texts(keep)
        except ForgetlessError as error:
            problems.append(str(error))
            self.keep = []
        if keep is not None and not self.keep and not problems:
            problems.append("keep is empty; give the general texts the model must keep")
        if method == "ewc" and keep is None:
            problems.append("ewc estimates its Fisher on kept data: pass keep=[general texts the model must keep]")
        if problems:
            raise ConfigError(f"ForgetPenalty('{method}')", problems)
        self.name = method
        self.max_length, self.trainer = max_length, trainer
        self.direct = overrides(self.method, "add_penalty_grad")  # L2-SP, EWC: gradient straight into .grad
        self.context: TrainContext | None = None
        self._hook: Any = None
        self._inside = False  # the teacher's forward (LoRA: adapters disabled) runs through the same hook
        self._sum: torch.Tensor | float = 0.0
        self._count = 0

    # -- Trainer events ----------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        trainer = self.trainer = trainer_of(self, self.trainer, "ForgetPenalty")
        if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
            raise ForgetlessError(
                f"ForgetPenalty('{self.name}') adds its gradient to whole .grad tensors, which DeepSpeed and "
                "FSDP shard",
                "train with DDP (torchrun / accelerate without DeepSpeed or FSDP), or use `forgetless run`, "
                "whose trainer routes the penalty through autograd under sharding",
            )
        tokenizer = tokenizer_of(trainer, kwargs.get("processing_class"), "ForgetPenalty") if self.keep else None
        move_to_front(trainer, self)  # on_log must add penalty/NAME before report_to integrations see the logs
        self.context = TrainContext(
            tokenizer=tokenizer,
            keep_texts=list(self.keep),
            seed=args.seed,
            max_length=self.max_length or getattr(args, "max_length", None) or 256,
            batch_size=args.per_device_train_batch_size,
            total_steps=state.max_steps,
        )
        self._sum, self._count = 0.0, 0
        self._prepare(model, args, state.global_step)
        if not self.direct:
            self._hook = model.register_forward_hook(self._add_to_loss, with_kwargs=True)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.direct:
            return
        scale = 1.0  # the whole step's penalty gradient, once (see the module docstring)
        scaler = getattr(self.trainer.accelerator, "scaler", None)
        if scaler is not None and scaler.is_enabled():
            scale *= float(scaler.get_scale())  # fp16: the LM gradients are scaled, so must this be
        value = self.method.add_penalty_grad(scale)
        if value is not None:
            self._record(value)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs is None or "loss" not in logs or not self._count:
            return  # as forgetless run: beside each training-loss line, not the final summary
        key, value = f"penalty/{self.name}", round(float(self._sum) / self._count, 6)
        logs[key] = value
        if state.log_history and state.log_history[-1].get("loss") == logs["loss"]:
            state.log_history[-1][key] = value  # Trainer.log stored a copy of `logs` before calling us
        self._sum, self._count = 0.0, 0

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.context is not None:  # free the anchors, the Fisher or the teacher copy
            self.method.end_stage(model, self.context)
            self.method.finish(model, self.context)

    # -- the pieces ----------------------------------------------------------------------------------

    def _prepare(self, model: Any, args: Any, step: int) -> None:
        """Anchor at the weights training starts from: these, or on a resume the saved start weights."""
        from safetensors.torch import load_file, save_file

        path = Path(args.output_dir) / STATE_FOLDER / f"{self.name}-start.safetensors"
        named = trainable(model)
        if step == 0:
            if args.save_strategy != "no" and is_main_process():
                path.parent.mkdir(parents=True, exist_ok=True)
                save_file({n: p.detach().cpu().contiguous() for n, p in named}, str(path))
            self.method.prepare_model(model, self.context)
            return
        saved = load_file(str(path)) if path.is_file() else {}
        if set(saved) != {n for n, _ in named}:
            raise ForgetlessError(
                f"training resumes at step {step}, but {path} does not hold the trainable weights training started "
                f"from, which {self.name} anchors to (the checkpoint's weights are not the start)",
                "resume with the same model, output_dir and ForgetPenalty it started with, or train from the start",
            )
        now = [p.detach().clone() for _, p in named]
        with torch.no_grad():
            for n, p in named:
                p.copy_(saved[n])
        try:
            self.method.prepare_model(model, self.context)
        finally:
            with torch.no_grad():
                for (_, p), value in zip(named, now, strict=True):
                    p.copy_(value)

    def _add_to_loss(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> Any:
        """Forward hook: the distillation term added to the output's loss of a training forward."""
        if self._inside or not module.training or not torch.is_grad_enabled():
            return None  # the teacher's forward, an evaluation, a probe check
        loss, logits = getattr(output, "loss", None), getattr(output, "logits", None)
        if loss is None or logits is None:
            raise ForgetlessError(
                f"ForgetPenalty('{self.name}') adds its term to the model's own loss and reads its logits, but "
                f"the training forward returned {'no loss' if loss is None else 'no logits'}",
                "pass `labels` in the batches so the model computes its loss (Trainer's default compute_loss); "
                "TRL's SFTTrainer computes its loss from a fused LM head without logits: use l2sp or ewc there, "
                "or `forgetless run`",
            )
        self._inside = True
        try:
            term = self.method.penalty(module, kwargs, output)
        finally:
            self._inside = False
        self._record(term)
        output.loss = loss + term.to(loss.dtype) / self._divisor(kwargs.get("num_items_in_batch"))
        return output

    def _divisor(self, num_items_in_batch: Any) -> int:
        """What Trainer does to the model's loss after the forward, undone for a once-per-step term."""
        t = self.trainer
        scaled = t.loss_is_scaled_for_ga
        if scaled is None:  # as Trainer.training_step decides whether it divides the loss by the GA steps
            scaled = bool(t.model_accepts_loss_kwargs and num_items_in_batch is not None) or t.compute_loss_func
        divisor = t.current_gradient_accumulation_steps if scaled else 1
        if t.args.average_tokens_across_devices and t.model_accepts_loss_kwargs and num_items_in_batch is not None:
            tp = t.get_tp_size() if hasattr(t, "get_tp_size") else 1
            divisor *= max(1, t.accelerator.num_processes // tp)  # Trainer.compute_loss multiplies by this
        return divisor

    def _record(self, value: torch.Tensor) -> None:
        self._sum = self._sum + value.detach().float()
        self._count += 1
