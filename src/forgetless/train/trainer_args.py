"""The `transformers.TrainingArguments` a fine-tune runs with: forgetless's choices, then the user's own fields.

A run config's `training.args` passes any TrainingArguments field straight through (`lr_scheduler_type`,
`gradient_checkpointing`, `deepspeed`, `fsdp`, `push_to_hub`...). Ten forgetless settings say what a
TrainingArguments field says (`steps` is `max_steps`); each may be written either way, never both
(`TWINS`; the config layer moves the Hugging Face spelling onto forgetless's before anything reads it).
Two names transformers 5 dropped are still taken (`LEGACY`): `warmup_ratio` (now a fraction given as
`warmup_steps`) and `logging_dir` (now an environment variable of the TensorBoard callback, which
forgetless sets on the callback itself). A few fields forgetless must own (`OWNED`) are refused.

Precedence for every other field: forgetless's defaults below, then the user's `args`.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError

# forgetless setting -> the TrainingArguments field that says the same thing.
TWINS = {
    "steps": "max_steps",
    "learning_rate": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "gradient_accumulation": "gradient_accumulation_steps",
    "warmup_steps": "warmup_steps",
    "weight_decay": "weight_decay",
    "save_steps": "save_steps",
    "seed": "seed",
    "bf16": "bf16",
    "report_to": "report_to",
}
# Hugging Face spelling -> forgetless setting; warmup_ratio (transformers < 5) is a fraction of the steps.
HF_TWINS = {hf: ours for ours, hf in TWINS.items()} | {"warmup_ratio": "warmup_steps"}
# Names transformers 5 dropped from TrainingArguments that forgetless still takes, and what they do here.
LEGACY = {
    "warmup_ratio": "a fraction of the steps to warm up over, below 1 (transformers 5: a fractional warmup_steps)",
    "logging_dir": "where TensorBoard writes, one folder per stage under it (transformers 5 reads it from the "
    "TENSORBOARD_LOGGING_DIR environment variable; forgetless sets it on the callback instead)",
}
# Fields forgetless decides itself: (why, what to do instead).
OWNED = {
    "output_dir": (
        "forgetless writes each stage's checkpoints in its own folder of the run's output_dir",
        "set the top-level output_dir",
    ),
    "num_train_epochs": (
        "forgetless trains a number of optimizer steps (the guard's cadence and --auto count them)",
        "set training.steps (one epoch is ceil(examples / (batch_size * gradient_accumulation * processes)) steps)",
    ),
    "eval_strategy": (
        "forgetless evaluates through its probes and the guard, not Trainer's evaluation loop (no eval_dataset)",
        "drop it; set guard.every to check the probes during training",
    ),
    "load_best_model_at_end": (
        "Trainer's 'best model' needs its evaluation loop, which forgetless does not use",
        "use guard.policy: rollback (restores the best check shown within the forgetting budget)",
    ),
}


def forgetless_kwargs(output_dir: Path, settings: Any) -> dict[str, Any]:
    """The TrainingArguments keywords forgetless sets from its own settings (constant learning rate after
    warmup, clipping at 1.0, logging aligned with checkpoints)."""
    return {
        "output_dir": str(output_dir),
        "max_steps": settings.steps,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation,
        "learning_rate": settings.learning_rate,
        "weight_decay": settings.weight_decay,
        "warmup_steps": settings.warmup_steps,
        "lr_scheduler_type": "constant_with_warmup" if settings.warmup_steps else "constant",
        "max_grad_norm": 1.0,
        "logging_steps": logging_steps(settings),
        "save_strategy": "steps" if settings.save_steps else "no",
        "save_steps": settings.save_steps or 500,
        "save_total_limit": 2,
        "bf16": settings.bf16,
        "report_to": settings.report_to or [],
        "seed": settings.seed,
        "data_seed": settings.seed,
        "disable_tqdm": not sys.stderr.isatty(),
        "dataloader_num_workers": 0,
    }


def logging_steps(settings: Any) -> int:
    """About ten logs a run; with checkpoints, a log at every checkpoint and at the end, so the loss
    history a checkpoint keeps covers every step up to it (a resumed stage's record is then whole)."""
    every = max(1, settings.steps // 10)
    return math.gcd(every, settings.save_steps, settings.steps) if settings.save_steps else every


def trainer_kwargs(output_dir: Path, settings: Any) -> dict[str, Any]:
    """forgetless's keywords updated with `settings.args` (the user's fields); `logging_dir` is kept apart."""
    user = dict(settings.args or {})
    for name in user:
        if name in HF_TWINS:
            ours = HF_TWINS[name]
            raise ForgetlessError(
                f"args['{name}'] says what the setting `{ours}` says", f"set {ours} instead of args['{name}']"
            )
        if name in OWNED:
            raise ForgetlessError(f"args['{name}']: {OWNED[name][0]}", OWNED[name][1])
    user.pop("logging_dir", None)
    return forgetless_kwargs(output_dir, settings) | user


def training_arguments(output_dir: Path, settings: Any) -> Any:
    """Trainer's arguments for `settings` (a `train.finetune.FinetuneSettings`)."""
    from transformers import TrainingArguments

    return TrainingArguments(**trainer_kwargs(output_dir, settings))


def tensorboard_dir(output_dir: Path, settings: Any) -> Path:
    """Where TensorBoard writes: `args['logging_dir']`, else $TENSORBOARD_LOGGING_DIR, else the settings'
    `logging_dir`, else `output_dir/logs`; never transformers' `output_dir/runs/<date>_<host>`."""
    chosen = (settings.args or {}).get("logging_dir") or os.environ.get("TENSORBOARD_LOGGING_DIR")
    return Path(chosen).expanduser() if chosen else Path(settings.logging_dir or Path(output_dir) / "logs")


def point_tensorboard(trainer: Any, folder: Path) -> None:
    """Make Trainer's TensorBoard callback (present with report_to: tensorboard) write into `folder`."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.tb_writer is None:
            callback.logging_dir = str(folder)


def as_ran(args: Any, kwargs: dict[str, Any], logging_dir: Path) -> dict[str, Any]:
    """The TrainingArguments fields forgetless or the user set, as Trainer holds them, JSON-safe."""
    every = args.to_dict()  # enums as their values, tokens masked
    ran = {name: every.get(name, kwargs[name]) for name in kwargs}
    ran["logging_dir"] = str(logging_dir)
    return json.loads(json.dumps(ran, default=str))
