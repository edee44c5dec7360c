"""A plain-PyTorch loop for a class-incremental task sequence, with forgetless's mitigations.

The classic continual-learning protocol (van de Ven et al., "Three types of incremental learning",
Nature Machine Intelligence 2022): one classifier with a single head over all classes is trained
on the tasks one after another, with no task label at test time, and scored on every task's test
set before training (row 0) and after each task, which gives the accuracy matrix R of
`forgetless.metrics` (rows = stages, columns = tasks).

The mitigations are forgetless's own, on a plain nn.Module:

- `methods`: configs of anchor regularizers (`EWCConfig`, `L2SPConfig`), built afresh for each call
  (a method keeps state across tasks, such as online EWC's Fisher, which must not leak into another
  sequence) and applied through their hooks. From the second task on, each is prepared with the
  previous task's training batches as `context.keep_batches` (EWC's Fisher; online EWC adds up the
  tasks' Fishers), adds its penalty gradient after every backward pass, and ends its stage after
  the task. Before the first task there is nothing to keep.
- `rehearsal`: replay (`methods.replay.replay_draw`) from a `BalancedMemory` of earlier examples,
  mixed into the task's data at a share `ratio`; the batch grows to batch_size / (1 - ratio), so a
  step still sees batch_size current-task examples on average and an epoch has the same steps.
- `lwf`: Learning without Forgetting (Li & Hoiem, 2017): `methods.distill.distillation_kl` between
  the model and a frozen copy taken after the previous task, on the classes of earlier tasks only
  (the new classes' logits are free to grow), as Avalanche's LwF does.

Optimization is SGD over the whole sequence (one optimizer; its momentum carries across tasks).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from forgetless.continual.memory import BalancedMemory
from forgetless.continual.tasks import Task
from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, MethodConfig, TrainContext
from forgetless.methods.distill import distillation_kl
from forgetless.methods.replay import replay_draw
from forgetless.metrics import average_accuracy, backward_transfer, forgetting_measure

ANCHORS = ("ewc", "l2sp")  # methods whose hooks need no language-model inputs


class LoopSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(default=5, ge=1, description="passes over each task's training data")
    batch_size: int = Field(default=32, ge=1, description="current-task examples per step")
    learning_rate: float = Field(default=0.05, gt=0, description="SGD step size")
    momentum: float = Field(default=0.0, ge=0, lt=1, description="SGD momentum (carried across tasks)")
    seed: int = Field(default=0, description="seeds the shuffling, the rehearsal memory and the replayed draw")
    shuffle: bool = Field(default=True, description="False: every epoch in the task's order, to compare loops")


class Rehearsal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    memory: int = Field(default=200, ge=1, description="examples of earlier tasks kept, shared equally by them")
    ratio: float = Field(default=0.5, gt=0, lt=1, description="share of each step's examples that are replayed")


class LwF(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(default=1.0, gt=0, description="multiplier of T^2 * KL (Avalanche's alpha = weight * T^2)")
    temperature: float = Field(default=2.0, gt=0, description="softens both class distributions")


@dataclass
class ContinualResult:
    """R[i][j]: accuracy on task j's test set after training stage i (row 0: before training)."""

    accuracy: list[list[float]]
    seconds: float  # wall time of the whole sequence: training, Fisher estimates, evaluations

    def summary(self) -> dict[str, float]:
        """Average accuracy, BWT (negative = forgetting) and forgetting measure (positive = forgetting)."""
        R = self.accuracy
        return {
            "average_accuracy": average_accuracy(R),
            "bwt": backward_transfer(R),
            "forgetting": forgetting_measure(R),
        }


def mlp(inputs: int, hidden: Sequence[int], classes: int) -> torch.nn.Sequential:
    """Linear + ReLU per hidden width, then a linear head of `classes` logits (torch's default init)."""
    layers: list[torch.nn.Module] = []
    for width in hidden:
        layers += [torch.nn.Linear(inputs, width), torch.nn.ReLU()]
        inputs = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(inputs, classes))


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of `x` whose highest logit (over all classes: no task label) is the target, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        return float((model(x).argmax(-1) == y).float().mean())
    finally:
        model.train(was_training)


def batches(x: torch.Tensor, y: torch.Tensor, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, targets) in order, `size` at a time (the last one shorter)."""
    return list(zip(x.split(size), y.split(size), strict=True))


def _check(methods: Sequence[MethodConfig]) -> None:
    other = [m.name for m in methods if m.name not in ANCHORS]
    if other:
        raise ForgetlessError(
            f"train_tasks applies only the anchor regularizers {list(ANCHORS)} as methods, not {other}",
            "for replay pass rehearsal=Rehearsal(...), for distillation lwf=LwF(...)",
        )


def train_tasks(
    model: torch.nn.Module,
    tasks: Sequence[Task],
    settings: LoopSettings,
    methods: Sequence[MethodConfig] = (),
    rehearsal: Rehearsal | None = None,
    lwf: LwF | None = None,
) -> ContinualResult:
    """Train `model` (logits over all classes) on `tasks` in order; return the accuracy matrix and time.

    With no mitigation this is naive fine-tuning. `methods`, `rehearsal` and `lwf` compose.
    """
    _check(methods)
    methods = [METHODS.get(config.name)(config) for config in methods]  # fresh: no state from another call
    start = time.perf_counter()
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=settings.momentum)
    order = torch.Generator().manual_seed(settings.seed)
    memory = BalancedMemory(rehearsal.memory, settings.seed) if rehearsal else None
    teacher: torch.nn.Module | None = None
    old_classes: list[int] = []
    rows = [[accuracy(model, t.x_test, t.y_test) for t in tasks]]
    model.train()
    for k, task in enumerate(tasks):
        context = None
        if k > 0 and methods:
            keep = batches(tasks[k - 1].x_train, tasks[k - 1].y_train, settings.batch_size)
            context = TrainContext(tokenizer=None, keep_batches=keep, stage=k, seed=settings.seed)
            for method in methods:
                model = method.prepare_model(model, context)
        x, y, size = task.x_train, task.y_train, settings.batch_size
        if memory is not None and len(memory):
            mx, my = memory.examples()
            picked = torch.tensor(replay_draw(range(len(my)), len(y), rehearsal.ratio, settings.seed + k))
            x, y = torch.cat([x, mx[picked]]), torch.cat([y, my[picked]])
            size = round(settings.batch_size / (1 - rehearsal.ratio))
        for _ in range(settings.epochs):
            perm = torch.randperm(len(y), generator=order) if settings.shuffle else torch.arange(len(y))
            for idx in perm.split(size):
                xb, yb = x[idx], y[idx]
                logits = model(xb)  # (B, C)
                loss = F.cross_entropy(logits, yb)
                if teacher is not None:
                    with torch.no_grad():
                        old = teacher(xb)[:, old_classes]
                    loss = loss + lwf.weight * distillation_kl(logits[:, old_classes], old, lwf.temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if context is not None:
                    for method in methods:
                        method.add_penalty_grad(1.0)
                optimizer.step()
        if context is not None:
            for method in methods:
                method.end_stage(model, context)
        if memory is not None:
            memory.add(task.x_train, task.y_train)
        if lwf is not None:
            teacher = copy.deepcopy(model).eval().requires_grad_(False)
            old_classes += [c for c in task.classes if c not in old_classes]
        rows.append([accuracy(model, t.x_test, t.y_test) for t in tasks])
    return ContinualResult(rows, time.perf_counter() - start)
