"""Fine-tune a causal LM on texts with `transformers.Trainer` and any list of methods.

The loss is next-token cross-entropy on the whole sequence. Trainer owns the loop, the optimizer
(AdamW), gradient clipping, logging and devices; this module prepares the data and calls each
method's hooks in order: prepare_model -> training_data -> (train, with penalties, parameter
groups and callbacks) -> finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from forgetless.errors import ForgetlessError
from forgetless.methods.base import Method, TrainContext
from forgetless.train.trainer_args import (
    as_ran,
    point_tensorboard,
    tensorboard_dir,
    trainer_kwargs,
    training_arguments,
)

__all__ = ["FinetuneSettings", "SaveAtEnd", "finetune", "settings_from", "training_arguments"]


class SaveAtEnd(TrainerCallback):
    """Checkpoint the last step too, so a resumed multi-stage run replays finished stages exactly."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= state.max_steps:
            control.should_save = True
        return control


@dataclass
class FinetuneSettings:
    steps: int = 30
    learning_rate: float = 1e-4
    batch_size: int = 8
    max_length: int = 128
    seed: int = 0
    gradient_accumulation: int = 1
    warmup_steps: float = 0  # steps, or a fraction of `steps` below 1
    weight_decay: float = 0.0
    save_steps: int | None = None  # checkpoint cadence; None saves no checkpoints
    bf16: bool = False
    pack: bool = False  # concatenate examples into full blocks (continued pre-training)
    report_to: list[str] | None = None  # Trainer integrations (tensorboard, wandb, mlflow...); None: none
    # Any other transformers.TrainingArguments field, passed through over forgetless's choices
    # (`train.trainer_args`); `logging_dir` there is where TensorBoard writes.
    args: dict[str, Any] = field(default_factory=dict)
    logging_dir: Path | None = None  # TensorBoard's folder when args has none; default output_dir/logs


def settings_from(training: Any, **decided: Any) -> FinetuneSettings:
    """FinetuneSettings from a config's `training` section (same field names); `decided`: what the caller sets."""
    names = [f.name for f in fields(FinetuneSettings)]
    return FinetuneSettings(**{n: getattr(training, n) for n in names if hasattr(training, n)} | decided)


def finetune(
    model: Any,
    tokenizer: Any,
    texts: list[str] | Any,
    output_dir: Path,
    settings: FinetuneSettings,
    methods: list[Method] | None = None,
    context: TrainContext | None = None,
    resume: bool = False,
    callbacks: list[Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train on `texts` (a list, or a `datasets.Dataset` or streamed `IterableDataset` with a `text` column) with
    `methods`. A stream is read as the steps consume it; `settings.steps` ends the training (a stream that runs
    out first is read again from its start, as Trainer's next epoch).

    `callbacks` are extra TrainerCallbacks (the guard's watch); one with an `attach` method is given
    the trainer, so it can log through it.

    Returns the model to keep and Trainer's metrics with the loss curve.
    """
    import datasets
    from transformers import DataCollatorForSeq2Seq, set_seed

    from forgetless.train.checkpoints import resume_point
    from forgetless.train.data import is_stream, tokenize_examples
    from forgetless.train.history import StageClock, read_state, saved_seconds, whole_stage
    from forgetless.train.stall import StallWarning
    from forgetless.train.trainer import ForgetlessTrainer

    methods = methods or []
    context = context or TrainContext(tokenizer=tokenizer, seed=settings.seed)
    context.total_steps, context.max_length, context.batch_size = (
        settings.steps,
        settings.max_length,
        settings.batch_size,
    )
    set_seed(settings.seed)
    for method in methods:
        model = method.prepare_model(model, context)
    dataset = datasets.Dataset.from_dict({"text": list(texts)}) if isinstance(texts, list) else texts
    for method in methods:
        dataset = method.training_data(dataset, context)
    if not is_stream(dataset) and len(dataset) == 0:  # a stream's source was found not empty when it was opened
        raise ForgetlessError("the training data is empty", "give at least one training text")
    args = training_arguments(output_dir, settings)
    # The last complete checkpoint: one cut off mid-save (kill -9, full disk) is skipped, and said.
    checkpoint = resume_point(output_dir) if resume else None
    start = read_state(checkpoint)
    clock, stall = StageClock(saved_seconds(start) or 0.0), StallWarning(settings.learning_rate)
    model.train()
    trainer = ForgetlessTrainer(
        model=model,
        args=args,
        train_dataset=tokenize_examples(dataset, tokenizer, settings.max_length, settings.pack),
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100),
        callbacks=[cb for m in methods for cb in m.callbacks(context)]
        + list(callbacks or [])
        + [clock, stall]
        + ([SaveAtEnd()] if settings.save_steps else []),
        methods=methods,
    )
    logs_dir = tensorboard_dir(output_dir, settings)
    point_tensorboard(trainer, logs_dir)  # not transformers' output_dir/runs/<date>: see train.trainer_args
    for callback in callbacks or []:
        if hasattr(callback, "attach"):
            callback.attach(trainer)
    if start is not None and _finished(start, settings.steps):
        # Resuming a checkpoint that already reached max_steps would train one step more
        # (transformers' loop checks the end after a step): load it instead.
        trainer._load_from_checkpoint(str(checkpoint))
        trainer.state.log_history = start["log_history"]
        trainer.state.global_step, trainer.state.epoch = start["global_step"], start.get("epoch")
        metrics: dict[str, Any] = {}
    else:
        metrics = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None).metrics
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    metrics = whole_stage(metrics, start, trainer.state.global_step, trainer.state.epoch, per_step)
    model.eval()
    for method in methods:
        method.end_stage(model, context)
    for method in methods:
        model = method.finish(model, context)
    logs = trainer.state.log_history
    losses = [(h["step"], h["loss"]) for h in logs if "loss" in h]
    penalties = [(h["step"], {k: v for k, v in h.items() if k.startswith("penalty/")}) for h in logs if "loss" in h]
    notes = {"method_notes": dict(context.notes)} if context.notes else {}
    warnings = {"warnings": [stall.message]} if stall.message else {}
    curves = {"loss_curve": losses, "penalty_curve": [p for p in penalties if p[1]]}
    ran = {"args": as_ran(args, trainer_kwargs(output_dir, settings), logs_dir)}
    return model, {**metrics, **curves, **notes, **warnings, **ran}


def _finished(state: dict[str, Any], steps: int) -> bool:
    control = state.get("stateful_callbacks", {}).get("TrainerControl", {}).get("args", {})
    stopped = control.get("should_training_stop", False)  # the guard stopped the run at this checkpoint
    return state.get("global_step", 0) >= steps or stopped
