"""Task splits: classes by group in their original order; split digits is fixed, standardized and balanced."""

from __future__ import annotations

import pytest
import torch

from forgetless.continual import split_by_classes, split_digits


def test_split_by_classes_keeps_order_and_rejects_overlaps() -> None:
    x = torch.arange(6, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor([2, 0, 1, 3, 0, 2])
    tasks = split_by_classes(x, y, x, y, [(0, 1), (2, 3)])
    assert tasks[0].classes == (0, 1) and tasks[0].x_train.squeeze(1).tolist() == [1.0, 2.0, 4.0]
    assert tasks[1].y_test.tolist() == [2, 3, 2]
    with pytest.raises(ValueError, match=r"group 1 repeats classes \[1\]"):
        split_by_classes(x, y, x, y, [(0, 1), (1, 2)])
    with pytest.raises(ValueError, match=r"group 1 \(classes \(7,\)\) has no training or no test example"):
        split_by_classes(x, y, x, y, [(0,), (7,)])


def test_split_digits_is_fixed_and_standardized() -> None:
    tasks = split_digits()
    assert [t.classes for t in tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert sum(len(t.y_train) for t in tasks) == 1347 and sum(len(t.y_test) for t in tasks) == 450
    x = torch.cat([t.x_train for t in tasks])
    assert x.shape[1] == 64 and x.dtype == torch.float32
    assert x.mean(0).abs().max() < 1e-5  # centred on the training split (constant pixels stay 0)
    again = split_digits()
    assert all(
        torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train) for a, b in zip(tasks, again, strict=True)
    )
    with pytest.raises(ValueError, match="tasks must divide the 10 digit classes"):
        split_digits(tasks=3)
