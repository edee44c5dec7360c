"""Class-incremental task sequences as plain tensors: a split of a labelled dataset by classes.

Split digits: scikit-learn's `load_digits` (1,797 8x8 images, 64 features, 10 classes, shipped
inside scikit-learn, so no download), one stratified train/test split with a fixed seed, each
feature standardized with the training split's mean and standard deviation, then 5 tasks of 2
classes: (0, 1), (2, 3), ..., (8, 9). About 270 training and 90 test examples per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from forgetless.errors import ForgetlessError


@dataclass(frozen=True)
class Task:
    """One task of a class-incremental sequence: the classes it introduces and their examples.

    Inputs are (N, D) float32, targets (N,) int64 class ids of the one shared output head.
    """

    classes: tuple[int, ...]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def split_by_classes(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    groups: Sequence[Sequence[int]],
) -> list[Task]:
    """One task per group of classes, each holding the examples of its classes in their original order.

    Raises:
        ValueError: if a class is in two groups, or a group has no training or no test example.
    """
    seen: set[int] = set()
    tasks = []
    for i, group in enumerate(groups):
        classes = tuple(int(c) for c in group)
        if seen & set(classes):
            raise ValueError(f"group {i} repeats classes {sorted(seen & set(classes))} of an earlier group")
        seen |= set(classes)
        train = torch.isin(y_train, torch.tensor(classes))
        test = torch.isin(y_test, torch.tensor(classes))
        if not train.any() or not test.any():
            raise ValueError(f"group {i} (classes {classes}) has no training or no test example")
        tasks.append(Task(classes, x_train[train], y_train[train], x_test[test], y_test[test]))
    return tasks


def split_digits(tasks: int = 5, test_fraction: float = 0.25, seed: int = 0) -> list[Task]:
    """Split digits: `tasks` tasks of 10 // tasks consecutive classes of scikit-learn's digits.

    Args:
        tasks: how many tasks (a divisor of 10: 2, 5 or 10).
        test_fraction: share of each class held out for testing (stratified).
        seed: the seed of the train/test split (fixed: the same tensors in every run).
    """
    if tasks not in (1, 2, 5, 10):
        raise ValueError(f"tasks must divide the 10 digit classes (1, 2, 5 or 10), got {tasks}")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise ForgetlessError(
            "split_digits needs scikit-learn (its load_digits ships the data)",
            "pip install scikit-learn (it is in forgetless's dev extra: pip install -e '.[dev]')",
        ) from err
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=seed)
    mean, std = x_train.mean(0), x_train.std(0)
    std[std == 0] = 1.0  # constant pixels (always blank in training) stay 0 after centring
    per = 10 // tasks
    return split_by_classes(
        torch.tensor((x_train - mean) / std, dtype=torch.float32),
        torch.tensor(y_train, dtype=torch.int64),
        torch.tensor((x_test - mean) / std, dtype=torch.float32),
        torch.tensor(y_test, dtype=torch.int64),
        [range(i * per, (i + 1) * per) for i in range(tasks)],
    )
