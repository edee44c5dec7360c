"""A run killed mid-way continues with --resume and ends with the same numbers and history as an unbroken run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forgetless.config import load_run_config
from forgetless.pipeline.run import run
from forgetless.train.trainer import ForgetlessTrainer
from tests.test_run import write_config


class Killed(Exception):
    pass


@pytest.mark.parametrize("killed_at", [3, 5])  # stage 2's step 3 (before its first checkpoint) or 5 (after it)
def test_killed_run_resumes_to_the_same_result(tiny_model, tiny_suite, tmp_path, monkeypatch, killed_at) -> None:  # noqa: ANN001
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = write_config(tmp_path / "a", tiny_model, tiny_suite, output_dir=str(tmp_path / "a" / "run"))
    broken = write_config(tmp_path / "b", tiny_model, tiny_suite, output_dir=str(tmp_path / "b" / "run"))
    config, methods = load_run_config(whole)
    expected = run(config, methods, whole.parent)

    real_step = ForgetlessTrainer.training_step
    seen = {"steps": 0}

    def dying_step(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen["steps"] += 1
        if seen["steps"] == 6 + killed_at:  # stage 1 has 6 steps and checkpoints at 4 and 6
            raise Killed
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(ForgetlessTrainer, "training_step", dying_step)
    config, methods = load_run_config(broken)
    with pytest.raises(Killed):
        run(config, methods, broken.parent)
    assert not (tmp_path / "b" / "run" / "results.json").exists()  # nothing written as if complete
    monkeypatch.setattr(ForgetlessTrainer, "training_step", real_step)

    config, methods = load_run_config(broken)
    resumed = run(config, methods, broken.parent, resume=True)
    np.testing.assert_allclose(resumed["transfer"]["R"], expected["transfer"]["R"], rtol=1e-5)
    # The baseline came from the cache, not a new evaluation.
    assert all(p["cached"] for p in resumed["baseline"]["probes"])
    saved = json.loads((tmp_path / "b" / "run" / "results.json").read_text())
    assert saved["transfer"]["R"] == resumed["transfer"]["R"]
    # The whole run's history, not the resumed part's: stage 1 finished at its checkpoint and stage 2
    # resumed from checkpoint-4 (killed_at 5) report the training of all their steps.
    for whole, again in zip(expected["stages"], resumed["stages"], strict=True):
        trained, kept = whole["training"], again["training"]
        assert kept["train_loss"] == pytest.approx(trained["train_loss"], rel=1e-6)
        np.testing.assert_allclose(kept["loss_curve"], trained["loss_curve"], rtol=1e-5)
        assert kept["penalty_curve"] == trained["penalty_curve"] and kept["epoch"] == trained["epoch"]
        assert kept["train_runtime"] > 0 and kept["train_steps_per_second"] > 0
        assert "resumed_finished_checkpoint" not in kept
    assert resumed["stages"][0]["training"]["resumed_from_step"] == 6
    assert resumed["stages"][1]["training"].get("resumed_from_step") == (4 if killed_at == 5 else None)
