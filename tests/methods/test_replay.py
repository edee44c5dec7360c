"""Replay mixes kept text in at the configured ratio and forgets less than plain fine-tuning."""

from __future__ import annotations

import datasets
import pytest

from forgetless.errors import ForgetlessError
from forgetless.methods import TrainContext
from tests.methods.forgetting_setup import OLD_TRAIN, fine_tune_new, make


def test_mix_has_the_ratio_and_is_seeded() -> None:
    replay = make("replay", ratio=0.25)
    context = TrainContext(tokenizer=None, keep_texts=[f"keep {i}" for i in range(10)], seed=3)
    train = datasets.Dataset.from_dict({"text": [f"new {i}" for i in range(30)]})
    mixed = replay.training_data(train, context)
    texts = mixed["text"]
    assert len(texts) == 40 and sum(t.startswith("keep") for t in texts) == 10  # 10 / 40 = 0.25
    assert texts == make("replay", ratio=0.25).training_data(train, context)["text"]  # same seed, same mix
    assert texts[:30] != [f"new {i}" for i in range(30)]  # shuffled in, not appended


def test_buffer_carries_earlier_stages() -> None:
    replay = make("replay", ratio=0.5, buffer_per_stage=5)
    context = TrainContext(tokenizer=None, keep_texts=[], seed=0)
    with pytest.raises(ForgetlessError, match="replay has no text to replay"):
        replay.training_data(datasets.Dataset.from_dict({"text": ["a"]}), context)
    replay = make("replay", ratio=0.5, buffer_per_stage=5)
    context.keep_texts = ["keep"]
    replay.training_data(datasets.Dataset.from_dict({"text": [f"stage0 {i}" for i in range(20)]}), context)
    replay.end_stage(None, context)
    assert len(replay.buffer) == 5 and all(t.startswith("stage0") for t in replay.buffer)


def test_ratio_bounds() -> None:
    for bad in (0, 1, -0.1):
        with pytest.raises(ValueError, match="ratio"):
            make("replay", ratio=bad)


def test_replay_forgets_less(old_base, plain, tmp_path) -> None:  # noqa: ANN001
    # Measured over seeds 0-2 and the CPU kernel settings (bench/behaviour_margins.py):
    # forgetting 0.01-0.06x plain's, gain 0.99x.
    outcome = fine_tune_new(old_base, [make("replay", ratio=0.5)], tmp_path)
    assert OLD_TRAIN  # the replayed text is the old task's training data (context.keep_texts)
    assert outcome.forgetting < 0.7 * plain.forgetting
    assert outcome.gain > 0.5 * plain.gain
