"""One run per output folder: a second run is refused (never mixed), a resume must keep the settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.config import load_run_config
from forgetless.errors import ForgetlessError
from forgetless.methods.ewc import fisher_path
from forgetless.pipeline.auto import auto_search
from forgetless.pipeline.folder import claim, clear, kept_state
from tests.guard.guard_setup import write_guarded

runner = CliRunner()
QUIET = {"drift": False, "importance": False, "interference": False}


def invoke(config: Path, *extra: str):  # noqa: ANN201
    return runner.invoke(app, ["run", str(config), *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder, by path: what a refused run must leave exactly as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def watched_steps(run_dir: Path) -> list[int]:
    results = json.loads((run_dir / "results.json").read_text())
    return [p["step"] for p in results["stages"][0]["training"]["watch"]["points"]]


def test_a_second_run_into_a_used_folder_is_refused(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    guard = {"budget": "50%", "policy": "rollback", "every": 2}
    training = {"steps": 6, "learning_rate": 1e-2, "batch_size": 8, "max_length": 48, "save_steps": 2}
    config = write_guarded(tmp_path, old_base, mc_data, guard, training=training, diagnostics=QUIET)
    run_dir = tmp_path / "run"
    first = invoke(config)
    assert first.exit_code == 0, first.output
    assert watched_steps(run_dir) == [0, 2, 4, 6]
    before = snapshot(run_dir)
    kept = {"stage-1-new/watch/best.safetensors", "stage-1-new/checkpoints/checkpoint-6/trainer_state.json"}
    assert kept <= set(before)

    again = invoke(config, "training.steps=4")
    assert again.exit_code == 2
    said = " ".join(again.output.split())
    assert f"{run_dir} already holds a run (stage-1-new/checkpoints/checkpoint-4" in said
    assert "stage-1-new/watch/best.safetensors" in said and "a new run there would mix with it" in said
    assert "continue that run with --resume, discard it and start over with --fresh" in said
    assert f"output_dir={run_dir}-2" in said
    assert snapshot(run_dir) == before  # nothing read back, nothing overwritten

    (run_dir / "notes.txt").write_text("mine")  # not forgetless's: --fresh leaves it
    fresh = invoke(config, "training.steps=4", "--fresh")
    assert fresh.exit_code == 0, fresh.output
    assert watched_steps(run_dir) == [0, 2, 4]  # this run's checks only, not "2, 4, 6, 2, 4"
    assert not (run_dir / "stage-1-new" / "checkpoints" / "checkpoint-6").exists()
    assert (run_dir / "notes.txt").read_text() == "mine"
    assert "--fresh" in runner.invoke(app, ["run", "--help"]).output


# Every piece of state an earlier run keeps, as its writers name it.
PIECES = [
    "stage-1-new/watch/watch.json",
    "stage-1-new/watch/best.safetensors",
    str(fisher_path(Path("state"), 0)),
    "state/genreplay-stage-0.jsonl",
    "stage-1-new/checkpoints/checkpoint-4/",
    "stage-1-new/checkpoints/diverged-checkpoint-6/",
    "stage-1-new/diagnostics/interference.json",
    "stage-1-new/eval.json",
    "auto/alpha-0.1-steps-3/",
    "results.json",
    "auto.json",
]


@pytest.mark.parametrize("piece", PIECES)
def test_every_piece_of_kept_state_is_refused_and_fresh_clears_it(tmp_path, piece) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    path = out / piece
    if piece.endswith("/"):
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    (out / "mine.txt").write_text("not a run's")
    with pytest.raises(ForgetlessError) as caught:
        claim(out, {"training.steps": 6}, resume=False, fresh=False)
    assert piece.rstrip("/") in caught.value.problem and "--resume" in caught.value.fix
    assert path.exists()
    claim(out, {"training.steps": 6}, resume=False, fresh=True)
    assert not path.exists() and kept_state(out) == [] and (out / "mine.txt").exists()
    assert json.loads((out / "run.json").read_text())["settings"] == {"training.steps": 6}
    assert "mine.txt" not in clear(out)


def test_auto_refuses_a_folder_with_earlier_trials(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    config = write_guarded(tmp_path, old_base, mc_data, {"budget": "5%"}, methods=[{"name": "l2sp"}])
    loaded, _ = load_run_config(config)
    trial = tmp_path / "run" / "auto" / "alpha-0.01-steps-3"
    trial.mkdir(parents=True)
    with pytest.raises(ForgetlessError, match="auto/alpha-0.01-steps-3 \\(an --auto trial\\)"):
        auto_search(loaded, tmp_path)
    assert trial.is_dir()


def test_resume_under_other_settings_is_refused(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    training = {"steps": 6, "learning_rate": 1e-2, "batch_size": 8, "max_length": 48, "save_steps": 3}
    config = write_guarded(tmp_path, old_base, mc_data, {"watch": False}, training=training, diagnostics=QUIET)
    run_dir = tmp_path / "run"
    assert invoke(config).exit_code == 0
    settings = json.loads((run_dir / "run.json").read_text())
    assert settings["settings"]["training.steps"] == 6 and len(settings["hash"]) == 64
    before = snapshot(run_dir)

    changed = invoke(config, "training.steps=3", "--resume")
    assert changed.exit_code == 2
    said = " ".join(changed.output.split())
    assert f"--resume: the settings changed since {run_dir} was started" in said
    assert "training.steps: 6 -> 3" in said
    assert f"resume with the settings it started with (see {run_dir / 'config.yaml'})" in said and "--fresh" in said
    assert snapshot(run_dir) == before  # checkpoint-6 and the 6-step results are untouched

    same = invoke(config, "--resume")  # the same settings: the finished run is re-scored, not retrained
    assert same.exit_code == 0, same.output
    again, first = json.loads((run_dir / "results.json").read_text()), json.loads(before["results.json"])
    assert again["final"]["comparisons"] == first["final"]["comparisons"]
    assert again["stages"][0]["training"]["train_loss"] == pytest.approx(first["stages"][0]["training"]["train_loss"])

    lines = (tmp_path / "new.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "new.jsonl").write_text("".join(lines[:-1]))  # the data edited in place: one record fewer
    edited = invoke(config, "--resume")
    assert edited.exit_code == 2 and "stages.0.data.source.0.path (contents)" in " ".join(edited.output.split())
