"""Say when training has stalled: a gradient norm of 0 at several logs in a row.

With a learning rate far too high (1e4 on the tiny test model) the first steps push the weights into
saturation, after which every gradient is exactly 0: the loss stays where it is, nothing is learned,
and the run used to finish without a word. The warning is given once per stage, logged and kept in
the stage's training record.
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)


class StallWarning(TrainerCallback):
    def __init__(self, learning_rate: float, patience: int = 3) -> None:
        self.learning_rate, self.patience = learning_rate, patience
        self.zero: list[tuple[int, float | None]] = []  # (step, loss) of the logs in a row with gradient 0
        self.message: str | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if not logs or "grad_norm" not in logs:
            return
        if logs["grad_norm"] != 0.0:
            self.zero = []
            return
        self.zero.append((state.global_step, logs.get("loss")))
        if len(self.zero) >= self.patience and self.message is None:
            first, last = self.zero[0][0], self.zero[-1][0]
            loss = self.zero[-1][1]
            self.message = (
                f"training has stalled: the gradient norm was 0 at every log from step {first} to {last} "
                f"(loss stuck at {loss:.4g}), so the weights no longer change; a learning rate far too high "
                f"saturates them (training.learning_rate is {self.learning_rate:g}). Lower it and start over "
                f"with --fresh"
            )
            log.warning(self.message)
