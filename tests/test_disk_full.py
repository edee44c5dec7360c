"""A full disk during `forgetless eval`, end to end on the tiny model: a full cache only warns and the
results are still written; a full output folder is a clear error, and no score is lost either way."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetless.cli.main import app

runner = CliRunner()

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")


@pytest.fixture
def fill(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path | None], None]:
    """fill(folder) makes every file created under `folder` behave as on a full disk; fill(None) frees it.

    The file is really created (so a leftover temporary would show), but its descriptor is /dev/full,
    where the kernel itself answers every write with ENOSPC.
    """
    real_open = os.open
    full: list[Path] = []

    def fake_open(path, flags, mode=0o777, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        fd = real_open(path, flags, mode, *args, **kwargs)
        if full and flags & os.O_CREAT and Path(os.fsdecode(path)).is_relative_to(full[0]):
            device = real_open("/dev/full", os.O_WRONLY)
            os.dup2(device, fd)
            os.close(device)
        return fd

    monkeypatch.setattr(os, "open", fake_open)
    return lambda folder: full.clear() if folder is None else full.append(folder)


def evaluate(model: Path, suite: Path, out: Path):  # noqa: ANN201
    args = ["eval", "--model", str(model), "--suite", str(suite), "--out", str(out), "--device", "cpu"]
    return runner.invoke(app, args)


def probes(out: Path) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads((out / "eval.json").read_text())["probes"]}


def test_a_full_cache_disk_warns_and_the_results_are_still_written(  # noqa: ANN001
    tiny_model, tiny_suite, tmp_path, isolated_cache, fill, caplog
) -> None:
    fill(isolated_cache)
    out = tmp_path / "out"
    done = evaluate(tiny_model, tiny_suite, out)
    assert done.exit_code == 0, done.output
    assert sorted(probes(out)) == ["canaries", "docs_ppl", "mc"]
    assert (out / "eval.md").is_file() and (out / "report.html").is_file()
    warnings = [r.getMessage() for r in caplog.records if r.name == "forgetless.cache"]
    assert len(warnings) == 1  # once, not once per probe
    flat = " ".join(warnings[0].split())
    assert flat.startswith(f"probe results are not being cached: could not write {isolated_cache / 'results'}/")
    assert "the disk is full (" in flat and " to write; " in flat
    assert flat.endswith("fix: free space there, or set FORGETLESS_CACHE to a folder on another disk")
    assert not list((isolated_cache / "results").iterdir())  # no half-written entry, no temporary


def test_a_full_output_disk_is_a_clear_error_and_loses_no_score(  # noqa: ANN001
    tiny_model, tiny_suite, tmp_path, isolated_cache, fill
) -> None:
    out = tmp_path / "out"
    fill(out)
    done = evaluate(tiny_model, tiny_suite, out)
    assert done.exit_code == 2, done.output
    message = " ".join(done.output.split())
    assert "Traceback" not in done.output
    assert f"error: could not write {out / 'eval.json'}: the disk is full (" in message
    assert " kB to write; " in message
    assert "fix: free at least " in message and "--out DIR for results, FORGETLESS_CACHE=DIR" in message
    assert not out.exists() or not list(out.iterdir())  # nothing half-written, no temporary

    # The scores reached the cache (another disk): once there is room, nothing is recomputed.
    fill(None)
    again = evaluate(tiny_model, tiny_suite, out)
    assert again.exit_code == 0, again.output
    assert all(p["cached"] for p in probes(out).values())


def test_a_full_disk_keeps_the_previous_results_whole(tiny_model, tiny_suite, tmp_path, fill) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    assert evaluate(tiny_model, tiny_suite, out).exit_code == 0
    before = {name: (out / name).read_bytes() for name in ("eval.json", "eval.md", "report.html")}
    fill(out)
    assert evaluate(tiny_model, tiny_suite, out).exit_code == 2
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
