"""The continual loop on split digits: the accuracy matrix, determinism, and mitigations that forget less than naive."""

from __future__ import annotations

import pytest
import torch

from forgetless.continual import LoopSettings, LwF, Rehearsal, accuracy, mlp, split_digits, train_tasks
from forgetless.errors import ForgetlessError
from forgetless.methods.distill import DistillConfig
from forgetless.methods.ewc import EWCConfig
from forgetless.methods.l2sp import L2SPConfig

TASKS = split_digits()
# Tasks learned to ~98% each (as in bench/avalanche_digits.py): naive forgets nearly all of them.
LEARNED = LoopSettings(epochs=5, batch_size=32, learning_rate=0.05, seed=0)
# Fewer effective steps: the tasks are not fitted to zero loss, so the batch Fisher has not vanished and EWC can act.
GENTLE = LoopSettings(epochs=5, batch_size=32, learning_rate=0.01, seed=0)


def model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return mlp(64, [100, 100], 10)


def test_accuracy_matrix_shape_row_zero_and_determinism() -> None:
    start = model()
    before = [accuracy(start, t.x_test, t.y_test) for t in TASKS]
    result = train_tasks(start, TASKS[:3], LoopSettings(epochs=1, seed=3))
    assert len(result.accuracy) == 4 and all(len(row) == 3 for row in result.accuracy)
    assert result.accuracy[0] == before[:3] and result.seconds > 0
    again = train_tasks(model(), TASKS[:3], LoopSettings(epochs=1, seed=3))
    assert again.accuracy == result.accuracy
    summary = result.summary()
    assert set(summary) == {"average_accuracy", "bwt", "forgetting"}
    assert summary["average_accuracy"] == pytest.approx(sum(result.accuracy[-1]) / 3)


def test_only_anchor_methods_go_through_hooks() -> None:
    with pytest.raises(
        ForgetlessError, match=r"only the anchor regularizers \['ewc', 'l2sp'\] as methods, not \['distill'\]"
    ):
        train_tasks(model(), TASKS, LEARNED, methods=[DistillConfig()])


def test_replay_forgets_less_than_naive_and_ends_higher() -> None:
    naive = train_tasks(model(), TASKS, LEARNED).summary()
    replay = train_tasks(model(), TASKS, LEARNED, rehearsal=Rehearsal(memory=200)).summary()
    assert naive["forgetting"] > 0.9  # class-incremental: the old classes are overwritten
    assert replay["forgetting"] < naive["forgetting"] - 0.5
    assert replay["average_accuracy"] > naive["average_accuracy"] + 0.4


def test_ewc_forgets_less_than_naive_and_ends_higher() -> None:
    naive = train_tasks(model(), TASKS, GENTLE).summary()
    ewc = train_tasks(model(), TASKS, GENTLE, methods=[EWCConfig(lam=300, normalize="none")]).summary()
    assert ewc["forgetting"] < naive["forgetting"] - 0.2
    assert ewc["average_accuracy"] > naive["average_accuracy"] + 0.1


def test_l2sp_and_lwf_run_and_compose_with_replay() -> None:
    result = train_tasks(
        model(), TASKS[:3], LEARNED, methods=[L2SPConfig(alpha=0.01)], rehearsal=Rehearsal(), lwf=LwF()
    )
    assert all(0.0 <= a <= 1.0 for row in result.accuracy for a in row)


def test_method_configs_are_built_afresh_for_each_call() -> None:
    """Online EWC carries its Fisher from task to task; nothing carries from one call into the next."""
    methods = [EWCConfig(lam=300, normalize="none")]
    first = train_tasks(model(), TASKS[:3], GENTLE, methods=methods)
    second = train_tasks(model(), TASKS[:3], GENTLE, methods=methods)
    assert first.accuracy == second.accuracy
