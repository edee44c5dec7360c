"""Hand-worked checks for forgetless.metrics.transfer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forgetless.metrics.transfer import (
    average_accuracy,
    backward_transfer,
    delta,
    forgetting_measure,
    forgetting_per_task,
    forward_transfer,
    relative_change,
)

# T = 3 tasks. Row 0 = base model, row i = after stage i; column j-1 = task j.
R = [
    [0.2, 0.3, 0.1],
    [0.9, 0.3, 0.2],
    [0.7, 0.8, 0.25],
    [0.6, 0.7, 0.95],
]
# Average accuracy: (0.6 + 0.7 + 0.95) / 3 = 0.75
# BWT: task 1: R[3][0] - R[1][0] = 0.6 - 0.9 = -0.3
#      task 2: R[3][1] - R[2][1] = 0.7 - 0.8 = -0.1;  mean = -0.2
# Forgetting: task 1: max(R[1][0], R[2][0]) - R[3][0] = 0.9 - 0.6 = 0.3
#             task 2: max(R[1][1], R[2][1]) - R[3][1] = 0.8 - 0.7 = 0.1;  mean = 0.2
# FWT: task 2: R[1][1] - R[0][1] = 0.3 - 0.3 = 0
#      task 3: R[2][2] - R[0][2] = 0.25 - 0.1 = 0.15;  mean = 0.075

# Same shape, but task 1 peaks after stage 2 and the base model already knew task 2.
R2 = [
    [0.2, 0.9, 0.1],
    [0.9, 0.3, 0.2],
    [0.95, 0.8, 0.25],
    [0.6, 0.7, 0.95],
]
# BWT unchanged: -0.2 (it only looks at R[j][j-1], not the max).
# Forgetting: task 1: max(0.9, 0.95) - 0.6 = 0.35; task 2: max(0.3, 0.8) - 0.7 = 0.1
#             (the base row's 0.9 is excluded; it would give 0.2);  mean = 0.225
# FWT: task 2: 0.3 - 0.9 = -0.6; task 3: 0.25 - 0.1 = 0.15; mean = -0.225


def test_hand_example() -> None:
    assert average_accuracy(R) == pytest.approx(0.75)
    assert backward_transfer(R) == pytest.approx(-0.2)
    assert forgetting_per_task(R) == pytest.approx([0.3, 0.1])
    assert forgetting_measure(R) == pytest.approx(0.2)
    assert forward_transfer(R) == pytest.approx(0.075)


def test_forgetting_uses_max_over_stages_not_base_row() -> None:
    assert backward_transfer(R2) == pytest.approx(-0.2)
    assert forgetting_per_task(R2) == pytest.approx([0.35, 0.1])
    assert forgetting_measure(R2) == pytest.approx(0.225)
    assert forward_transfer(R2) == pytest.approx(-0.225)


def test_numpy_input_matches_lists() -> None:
    assert backward_transfer(np.array(R)) == pytest.approx(backward_transfer(R))


def test_single_task_has_no_transfer() -> None:
    single = [[0.3], [0.8]]
    assert average_accuracy(single) == pytest.approx(0.8)
    assert math.isnan(backward_transfer(single))
    assert forgetting_per_task(single) == []
    assert math.isnan(forgetting_measure(single))
    assert math.isnan(forward_transfer(single))


def test_delta_and_relative_change() -> None:
    assert delta(0.5, 0.7) == pytest.approx(0.2)
    assert relative_change(0.5, 0.7) == pytest.approx(0.4)
    assert relative_change(-0.5, -0.25) == pytest.approx(0.5)  # divided by |before|
    assert math.isnan(relative_change(0.0, 1.0))


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([], r"R must be a 2-D matrix with at least one column, got shape \(0,\)"),
        ([[], []], "at least one column"),
        ([0.1, 0.2], "row 0 is not a 1-D sequence"),
        (
            [[0.1, 0.2], [0.3], [0.4, 0.5]],
            "rectangular: row 0 has 2 columns, row 1 has 1",
        ),
        ([[0.1, 0.2], [0.3, 0.4]], r"T \+ 1 = 3 rows .* got 2 rows"),
        (np.zeros((3, 3)), r"T \+ 1 = 4 rows"),
        ([[0.1], [float("nan")]], "R contains NaN"),
    ],
)
def test_matrix_value_errors(matrix: object, message: str) -> None:
    for metric in (
        average_accuracy,
        backward_transfer,
        forgetting_measure,
        forward_transfer,
    ):
        with pytest.raises(ValueError, match=message):
            metric(matrix)


def test_scalar_value_errors() -> None:
    with pytest.raises(ValueError, match="before must be finite"):
        delta(float("nan"), 1.0)
    with pytest.raises(ValueError, match="after must be finite"):
        relative_change(1.0, float("inf"))
