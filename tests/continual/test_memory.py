"""The rehearsal memory: size // k per task (remainder to the first), a fixed subset per task, truncated not redrawn."""

from __future__ import annotations

import pytest
import torch

from forgetless.continual import BalancedMemory


def task(first: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.arange(first, first + n)
    return values.float().unsqueeze(1), values


def test_quotas_subsets_and_truncation() -> None:
    memory = BalancedMemory(size=5, seed=0)
    x, y = memory.examples()
    assert len(memory) == 0 and len(y) == 0
    memory.add(*task(0))
    _, first = memory.examples()
    assert memory.quotas() == [5] and len(memory) == 4 and sorted(first.tolist()) == [0, 1, 2, 3]  # all 4 fit
    memory.add(*task(10))
    assert memory.quotas() == [3, 2]
    x, y = memory.examples()
    assert y[:3].tolist() == first[:3].tolist()  # task 0 keeps a prefix of its own draw
    assert set(y[3:].tolist()) <= {10, 11, 12, 13} and len(y) == 5
    assert torch.equal(x.squeeze(1), y.float())  # inputs stay paired with their targets
    memory.add(*task(20))
    assert memory.quotas() == [2, 2, 1] and len(memory) == 5


def test_same_seed_same_memory() -> None:
    a, b = BalancedMemory(3, seed=1), BalancedMemory(3, seed=1)
    for m in (a, b):
        m.add(*task(0, 10))
    assert torch.equal(a.examples()[1], b.examples()[1])
    with pytest.raises(ValueError, match="memory size must be at least 1"):
        BalancedMemory(0, seed=0)
