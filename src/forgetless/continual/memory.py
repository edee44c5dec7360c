"""A rehearsal memory of fixed size, shared equally by the tasks seen so far.

The policy of Avalanche's default `ExperienceBalancedBuffer` (adaptive size): after k tasks each
holds size // k examples (the first size % k tasks one more), a random subset of its training data
drawn once when the task ends and truncated, not redrawn, as later tasks take their share. Only the
random numbers differ: here a seeded generator of the memory's own, there torch's global one.
"""

from __future__ import annotations

import torch


class BalancedMemory:
    """At most `size` (input, target) examples of earlier tasks, balanced across tasks."""

    def __init__(self, size: int, seed: int) -> None:
        if size < 1:
            raise ValueError(f"memory size must be at least 1, got {size}")
        self.size = size
        self._generator = torch.Generator().manual_seed(seed)
        self._tasks: list[tuple[torch.Tensor, torch.Tensor]] = []  # each task's examples in its drawn order

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Keep a random subset of a finished task's examples (what fits its share is used)."""
        order = torch.randperm(len(x), generator=self._generator)
        self._tasks.append((x[order], y[order]))

    def quotas(self) -> list[int]:
        """How many examples each task holds now: size // k, the first size % k tasks one more."""
        k = len(self._tasks)
        return [self.size // k + (1 if i < self.size % k else 0) for i in range(k)] if k else []

    def examples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory's inputs (M, ...) and targets (M,), task after task; empty before any task."""
        if not self._tasks:
            return torch.empty(0), torch.empty(0, dtype=torch.int64)
        kept = [(x[:q], y[:q]) for (x, y), q in zip(self._tasks, self.quotas(), strict=True)]
        return torch.cat([x for x, _ in kept]), torch.cat([y for _, y in kept])

    def __len__(self) -> int:
        return sum(min(q, len(y)) for (_, y), q in zip(self._tasks, self.quotas(), strict=True))
