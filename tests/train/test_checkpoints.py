"""Checkpoints a resume can trust: cut-off saves are skipped, diverged weights set aside, stalls said."""

from __future__ import annotations

import errno
import logging

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerState

from forgetless.errors import ForgetlessError
from forgetless.train.checkpoints import resume_point
from forgetless.train.finetune import FinetuneSettings, finetune
from tests.conftest import sentences
from tests.train.test_trainer import load


class Killed(Exception):
    pass


def settings(**changes: object) -> FinetuneSettings:
    return FinetuneSettings(
        **{"steps": 6, "learning_rate": 1e-2, "batch_size": 8, "max_length": 32, "save_steps": 2, **changes}
    )


def train(tiny_model, folder, resume=False, **changes):  # noqa: ANN001, ANN002, ANN003, ANN201
    model, tok = load(tiny_model)
    return finetune(model, tok, sentences(64), folder, settings(**changes), resume=resume)


def cut_off_at(step: int, error: BaseException):  # noqa: ANN201
    """TrainerState.save_to_json failing at `step`: the checkpoint's weights are written, its state is not."""
    real = TrainerState.save_to_json

    def save(self, path):  # noqa: ANN001, ANN202
        if self.global_step == step:
            raise error
        return real(self, path)

    return save


def same_weights(a, b) -> None:  # noqa: ANN001
    for (name, x), (_, y) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("fault", ["kill", "disk full"])
def test_resume_skips_a_half_written_checkpoint(tiny_model, tmp_path, monkeypatch, caplog, fault) -> None:  # noqa: ANN001
    whole, _ = train(tiny_model, tmp_path / "whole")
    folder = tmp_path / "broken"
    error = Killed() if fault == "kill" else OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(TrainerState, "save_to_json", cut_off_at(4, error))
    with pytest.raises(Killed if fault == "kill" else ForgetlessError) as caught:
        train(tiny_model, folder)
    if fault == "disk full":  # what, where, and the fix: the resume that skips the cut-off checkpoint
        message = str(caught.value)
        assert f"the disk filled up while saving checkpoint-4 in {folder}" in message
        assert "free space on that disk, then continue with --resume" in message
        assert "resumes from checkpoint-2, the last complete checkpoint" in message
    assert not (folder / "checkpoint-4" / "trainer_state.json").exists()
    assert (folder / "checkpoint-4" / "model.safetensors").is_file()  # half-written: weights, no state
    monkeypatch.undo()

    with caplog.at_level(logging.WARNING, logger="forgetless.train.checkpoints"):
        resumed, training = train(tiny_model, folder, resume=True)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"{folder / 'checkpoint-4'} was half-written" in said and "resuming from checkpoint-2" in said
    same_weights(resumed, whole)  # resumed from step 2, not from the cut-off step 4, not from scratch
    assert training["resumed_from_step"] == 2
    assert sorted(p.name for p in folder.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    assert resume_point(folder).name == "checkpoint-6"  # the re-written checkpoint-4 is complete


def test_only_a_half_written_checkpoint_starts_the_stage_over(tiny_model, tmp_path, monkeypatch, caplog) -> None:  # noqa: ANN001
    monkeypatch.setattr(TrainerState, "save_to_json", cut_off_at(2, Killed()))
    with pytest.raises(Killed):
        train(tiny_model, tmp_path)
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING, logger="forgetless.train.checkpoints"):
        assert resume_point(tmp_path) is None
    assert "no complete checkpoint: this stage starts over" in caplog.text
    assert not (tmp_path / "checkpoint-2").exists()


def test_nan_keeps_the_last_checkpoint_with_finite_weights(tiny_model, tmp_path) -> None:  # noqa: ANN001
    # lr 1e5 on the tiny model: the update of step 3 makes the weights NaN, so step 4's loss is NaN.
    with pytest.raises(ForgetlessError) as caught:
        train(tiny_model, tmp_path, steps=12, learning_rate=1e5, save_steps=1)
    message = str(caught.value)
    assert "the training loss became nan at step 4 (the weights now hold NaN or inf)" in message
    assert "diverged-checkpoint-3 held those weights and was set aside" in message
    assert "lower training.learning_rate (now 100000)" in message and "--fresh" in message
    assert f"checkpoint-2 in {tmp_path}, the last checkpoint followed by a finite loss, is kept" in message
    diverged = load_file(tmp_path / "diverged-checkpoint-3" / "model.safetensors")
    kept = load_file(tmp_path / "checkpoint-2" / "model.safetensors")
    assert not all(torch.isfinite(w).all() for w in diverged.values())
    assert all(torch.isfinite(w).all() for w in kept.values())
    assert resume_point(tmp_path).name == "checkpoint-2"  # what --resume continues from


def test_a_stalled_run_warns_once(tiny_model, tmp_path, caplog) -> None:  # noqa: ANN001
    # lr 1e4 saturates the tiny model at the first step: gradient norm 0 and the loss stuck from step 2 on.
    with caplog.at_level(logging.WARNING, logger="forgetless.train.stall"):
        _, training = train(tiny_model, tmp_path, steps=12, learning_rate=1e4, save_steps=None)
    stalls = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalls) == 1 and training["warnings"] == stalls
    assert "the gradient norm was 0 at every log from step 2 to 4 (loss stuck at 5.991)" in stalls[0]
    assert "training.learning_rate is 10000" in stalls[0] and "--fresh" in stalls[0]
    losses = [loss for _, loss in training["loss_curve"][1:]]
    assert max(losses) - min(losses) == 0  # stuck indeed
    _, healthy = train(tiny_model, tmp_path / "healthy", steps=4, save_steps=None)
    assert "warnings" not in healthy
