"""bench/gpu_check.py on a CPU machine: it refuses before loading anything (exit 2, naming what is missing) and
prints its plan with --cpu-dry-run. The GPU runs themselves never run in the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import gpu_check  # noqa: E402


def _no_run(*args, **kwargs):
    raise AssertionError("a refused check must not run (or load) anything")


def test_refuses_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(gpu_check, "_run_one", _no_run)
    assert gpu_check.main(["--skip", "qlora-4bit"]) == 2
    err = capsys.readouterr().err
    assert "CUDA" in err and "--cpu-dry-run" in err and "bitsandbytes" not in err


def test_refuses_qlora_without_bitsandbytes_even_with_cuda(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("forgetless.models.load_options.has_bitsandbytes", lambda: False)
    monkeypatch.setattr(gpu_check, "_run_one", _no_run)
    assert gpu_check.main([]) == 2
    err = capsys.readouterr().err
    assert "bitsandbytes" in err and "--skip qlora-4bit" in err and "no CUDA" not in err


def test_missing_is_empty_when_everything_is_there():
    assert gpu_check.missing(gpu_check.ROWS, cuda=True, bnb=True) == []
    assert gpu_check.missing([r for r in gpu_check.ROWS if not r.needs_bnb], cuda=True, bnb=False) == []


def test_script_exit_code_on_this_machine():
    """The real script, as a user runs it here (this CPU machine has no CUDA)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine: the refusal cannot be seen here")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py")], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "no CUDA GPU is visible" in done.stderr and "Traceback" not in done.stderr


def test_dry_run_prints_every_row(capsys, tmp_path):
    assert gpu_check.main(["--cpu-dry-run", "--out", str(tmp_path), "--steps", "7"]) == 0
    out = capsys.readouterr().out
    for row in gpu_check.ROWS:
        assert f"] {row.name}: forgetless " in out
    assert out.count("training.steps=7") == 5 and "--device cuda" in out and "examples/qlora.yaml" in out
    assert gpu_check.main(["--cpu-dry-run", "--only", "lora-bf16,ewc-bf16", "--skip", "ewc-bf16"]) == 0
    assert "lora-bf16" in (text := capsys.readouterr().out) and "ewc-bf16" not in text and "qlora" not in text


def test_unknown_row_is_refused():
    with pytest.raises(SystemExit, match="unknown row"):
        gpu_check.main(["--cpu-dry-run", "--only", "nope"])


@pytest.mark.parametrize("name", ["ewc-bf16"])  # the short-form model and the methods list, both overridden
def test_planned_overrides_make_a_valid_config(name, tmp_path):
    """The rows' overrides are ones forgetless accepts (training.bf16 aside: TrainingArguments wants a GPU)."""
    from forgetless.config.run import load_run_config

    row = next(r for r in gpu_check.ROWS if r.name == name)
    settings = [s for s in row.settings(tmp_path, 4, "smollm2-135m") if s != "training.bf16=true"]
    config, methods = load_run_config(gpu_check.EXAMPLES / row.example, settings)
    assert config.device == "cuda" and config.model.dtype == "bf16" and config.training.steps == 4
    assert config.output_dir == tmp_path / name
    assert [m.config.name for m in methods] == (["ewc"] if name == "ewc-bf16" else ["full"])
