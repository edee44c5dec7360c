"""A stage's training record across resumes: the same numbers whether or not the run was interrupted.

Trainer reloads the loss history (`log_history`) from the checkpoint it resumes, but its end-of-training
metrics cover only the steps it ran itself: a resumed stage reported the mean loss of the steps after
the checkpoint, and a stage already finished at its checkpoint reported no training at all. Here the
checkpoint's `trainer_state.json` supplies the part before it: the loss of every step up to it
(logging is aligned with checkpoints, see `train.finetune.training_arguments`) and, through
`StageClock`, the training seconds spent before it (Trainer saves an ExportableState callback's
state in every checkpoint).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState


class StageClock(TrainerCallback, ExportableState):
    """Seconds of training in this stage, including the sessions before a resume."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds  # spent before this session (read back from the checkpoint)
        self._since: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._since = time.perf_counter()

    def elapsed(self) -> float:
        return self.seconds + (time.perf_counter() - self._since if self._since is not None else 0.0)

    def state(self) -> dict[str, Any]:
        return {"args": {}, "attributes": {"seconds": self.elapsed()}}


def read_state(checkpoint: Path | str | None) -> dict[str, Any] | None:
    """A checkpoint's trainer_state.json (None without a checkpoint)."""
    if checkpoint is None:
        return None
    return json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))


def saved_seconds(state: dict[str, Any] | None) -> float | None:
    """The StageClock seconds a checkpoint recorded (None for one saved without it)."""
    clock = (state or {}).get("stateful_callbacks", {}).get(StageClock.__name__)
    clock = clock[-1] if isinstance(clock, list) else clock
    return None if not clock else float(clock.get("attributes", {}).get("seconds", 0.0))


def loss_sum(log_history: list[dict[str, Any]], upto: int) -> float:
    """Sum of the per-step losses up to step `upto`: each logged loss is the mean since the last log."""
    total, last = 0.0, 0
    for entry in log_history:
        if "loss" in entry and entry["step"] <= upto:
            total += entry["loss"] * (entry["step"] - last)
            last = entry["step"]
    return total


def whole_stage(
    metrics: dict[str, Any], start: dict[str, Any] | None, steps: int, epoch: float | None, samples_per_step: int
) -> dict[str, Any]:
    """Trainer's `metrics` for this session, extended to the whole stage when it resumed from `start`.

    Args:
        metrics: what `trainer.train()` returned ({} when the checkpoint had already finished the stage).
        start: the resumed checkpoint's trainer_state.json; None for an unbroken stage (metrics kept as is).
        steps: the stage's steps in all (the global step it ended at).
        epoch: Trainer's epoch at the end.
        samples_per_step: examples per optimizer step over all devices.
    """
    if start is None:
        return metrics
    before = int(start["global_step"])
    ran = steps - before
    loss = loss_sum(start["log_history"], before) + metrics.get("train_loss", 0.0) * ran
    earlier = saved_seconds(start)
    runtime = None if earlier is None else earlier + metrics.get("train_runtime", 0.0)
    whole = {
        **metrics,
        "train_loss": loss / steps if steps else None,
        "train_runtime": None if runtime is None else round(runtime, 4),
        "train_samples_per_second": round(steps * samples_per_step / runtime, 3) if runtime else None,
        "train_steps_per_second": round(steps / runtime, 3) if runtime else None,
        "epoch": epoch,
        "resumed_from_step": before,
    }
    return whole
