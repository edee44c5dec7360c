"""Classic continual learning on plain PyTorch modules: task splits, a training loop, a memory.

Language-model fine-tuning goes through `train` (transformers.Trainer); this package is the same
mitigations (EWC, L2-SP, replay, distillation) on a small classifier trained task after task, the
setting of the continual-learning literature and of Avalanche (bench/avalanche_digits.py).
"""

from __future__ import annotations

from forgetless.continual.loop import (
    ContinualResult,
    LoopSettings,
    LwF,
    Rehearsal,
    accuracy,
    batches,
    mlp,
    train_tasks,
)
from forgetless.continual.memory import BalancedMemory
from forgetless.continual.tasks import Task, split_by_classes, split_digits

__all__ = [
    "BalancedMemory",
    "ContinualResult",
    "LoopSettings",
    "LwF",
    "Rehearsal",
    "Task",
    "accuracy",
    "batches",
    "mlp",
    "split_by_classes",
    "split_digits",
    "train_tasks",
]
