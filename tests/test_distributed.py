"""Two processes on CPU (torchrun, gloo) run a tiny `run` end to end like one process does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.test_run import write_config

TRAINING = {"steps": 6, "learning_rate": 5e-3, "max_length": 48, "save_steps": 100}


def launch(config: Path, processes: int, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FORGETLESS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "forgetless", "run", str(config)]
    if processes > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "--master_port",
            "29517",
            "-m",
            "forgetless",
            "run",
            str(config),
        ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=config.parent)


def test_two_processes_match_one(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    results = {}
    for name, processes, batch in (("one", 1, 8), ("two", 2, 4)):  # same global batch of 8
        (tmp_path / name).mkdir()
        config = write_config(
            tmp_path / name,
            tiny_model,
            tiny_suite,
            methods=[{"name": "distill"}],
            output_dir=str(tmp_path / name / "run"),
            training={**TRAINING, "batch_size": batch},
        )
        done = launch(config, processes, tmp_path / "cache")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert done.stdout.count("final model against the base") == 1  # only rank 0 reports
        results[name] = json.loads((tmp_path / name / "run" / "results.json").read_text())
    assert results["one"]["world_size"] == 1 and results["two"]["world_size"] == 2
    # The baseline is the same model on the same items: equal, and cached for the second launch.
    assert results["two"]["transfer"]["R"][0] == results["one"]["transfer"]["R"][0]
    # Training sees the same data in a different order across 2 ranks, so the numbers agree
    # within a tolerance, not bit for bit.
    np.testing.assert_allclose(results["two"]["transfer"]["R"], results["one"]["transfer"]["R"], rtol=0.05)
    for name in results:
        curve = results[name]["stages"][-1]["training"]["loss_curve"]
        assert len(curve) == 6 and curve[-1][1] < curve[0][1]
    # The distillation penalty is computed on each rank's half batch (other examples than one process
    # sees at the same step), so step by step it differs; over the stage its level must agree.
    one, two = (
        [p["penalty/distill"] for _, p in results[n]["stages"][-1]["training"]["penalty_curve"]] for n in results
    )
    assert len(one) == len(two) == 6 and one[0] == two[0] == 0.0  # zero at the anchor, on every rank
    np.testing.assert_allclose(np.mean(two), np.mean(one), rtol=0.3)


def test_guard_decides_once_for_both_ranks(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    """Under 2 processes the guard checks on rank 0 and every rank rolls back and stops at the same step
    (a rank that trained on alone would hang the next gradient all-reduce, and the launch time out)."""
    from safetensors.torch import load_file

    from tests.guard.guard_setup import write_guarded

    config = write_guarded(
        tmp_path,
        old_base,
        mc_data,
        {"budget": "5%", "policy": "rollback", "every": 1},
        training={"steps": 12, "learning_rate": 1e-2, "batch_size": 4, "max_length": 48, "save_steps": 100},
    )
    done = launch(config, 2, tmp_path / "cache")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    stopped = results["guard"]["stopped"]
    assert results["world_size"] == 2 and stopped["action"] == "rollback" and stopped["step"] < 12
    stage = tmp_path / "run" / "stage-1-new"
    final, best = load_file(stage / "model" / "model.safetensors"), load_file(stage / "watch" / "best.safetensors")
    assert all(bool((final[n] == best[n]).all()) for n in final)
    checkpoint = json.loads(next((stage / "checkpoints").glob("checkpoint-*/trainer_state.json")).read_text())
    assert checkpoint["global_step"] == stopped["step"]


USER_SCRIPT = """
import hashlib, json, os, sys
from pathlib import Path

import forgetless
from tests.integration.script_setup import plain_trainer

model_dir, out, suite = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
guard = forgetless.ForgetGuard(suite=suite, budget="5%", policy="rollback", every=1)
trainer = plain_trainer(model_dir, out, [], batch_size=4)
trainer.add_callback(forgetless.ForgetPenalty("l2sp", alpha=0.01))
trainer.add_callback(guard)
trainer.train()
weights = b"".join(p.detach().numpy().tobytes() for p in trainer.model.parameters())
record = {"digest": hashlib.sha256(weights).hexdigest(), "step": trainer.state.global_step}
record["stopped"] = guard.history["stopped"]
(out / f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(record))
"""


def test_a_user_script_with_forgetless_callbacks_under_torchrun(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    """ForgetGuard and ForgetPenalty in a user's own Trainer script launched by torchrun: rank 0 checks, every
    rank rolls back to the same weights and stops at the same step (one that trained on would hang)."""
    from tests.guard.guard_setup import write_guarded

    write_guarded(tmp_path, old_base, mc_data, {})  # for its suite.yaml (old-task perplexity + mc)
    (tmp_path / "script.py").write_text(USER_SCRIPT)
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "FORGETLESS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29518"]
    command += [str(tmp_path / "script.py"), str(old_base), str(tmp_path / "out"), str(tmp_path / "suite.yaml")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["stopped"]["action"] == "rollback" and ranks[0]["step"] < 12
    assert ranks[0]["digest"] == ranks[1]["digest"] and ranks[0]["step"] == ranks[1]["step"]
    assert ranks[1]["stopped"] == ranks[0]["stopped"]  # the decision was broadcast, not taken twice
