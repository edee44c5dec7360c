"""Behaviour: on the tiny BERT, plain fine-tuning of a new head forgets what the encoder knew; freezing
(head only), L2-SP, EWC (embedding Fisher) and LoRA forget far less while learning the new task as well."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.encoders.encoder_setup import Outcome, fine_tune_new
from tests.methods.forgetting_setup import make


@pytest.fixture(scope="module")
def plain(encoder_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return fine_tune_new(encoder_base, [], tmp_path_factory.mktemp("plain"))


def test_plain_fine_tuning_learns_the_new_task_and_forgets_the_kept_one(plain: Outcome) -> None:
    assert plain.kept_before > 0.95  # the base knows its joint task (linear probe on [CLS])
    assert plain.new_after > 0.9 and plain.gain > 0.3  # the fresh head learned motion
    assert plain.forgetting > 0.2  # and the encoder lost what the base knew on the way


MITIGATIONS = {
    "freeze": {"part": "all_but_head"},
    "l2sp": {"alpha": 0.1},
    "ewc": {"lam": 1.0, "fisher": "sampled", "output": "embedding"},
    "lora": {"r": 2, "alpha": 2.0},
}


@pytest.mark.parametrize("name", list(MITIGATIONS))
def test_mitigation_forgets_less_and_still_learns(
    name: str, encoder_base: Path, plain: Outcome, tmp_path: Path
) -> None:
    run = fine_tune_new(encoder_base, [make(name, **MITIGATIONS[name])], tmp_path)
    assert run.forgetting < 0.5 * plain.forgetting, (name, run.kept_after, plain.kept_after)
    assert run.new_after > 0.9, (name, run.new_after)
