"""Atomic writes: a full disk or quota names the path and the size and leaves the old file whole;
files get the permissions of any file the user creates (the umask), not mkstemp's 0o600."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from forgetless.errors import ForgetlessError
from forgetless.paths import DiskFullError, human_size, write_bytes_atomic, write_json_atomic, write_text_atomic


def failing(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Make fsync fail as a full disk (or quota) does on NFS, where write() itself succeeds."""

    def fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize(
    ("code", "reason"), [(errno.ENOSPC, "the disk is full"), (errno.EDQUOT, "the disk quota is exceeded")]
)
def test_a_full_disk_names_the_path_and_size_and_keeps_the_old_file(
    code: int, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out" / "eval.json"
    write_json_atomic(path, {"acc": 0.5})
    old = path.read_text()
    failing(monkeypatch, code)
    with pytest.raises(DiskFullError) as caught:
        write_text_atomic(path, "x" * 12_345)
    error = caught.value
    assert isinstance(error, ForgetlessError)  # so the CLI prints it with exit code 2, no traceback
    assert error.path == path and error.size == 12_345
    assert error.problem.startswith(f"could not write {path}: {reason} (12.3 kB to write")
    # Free space is shown for a full disk; under a quota the disk's free space is beside the point.
    assert ("free there" in error.problem) == (code == errno.ENOSPC)
    assert error.fix == (
        "free at least 12.3 kB on that disk, or write elsewhere: --out DIR for results, "
        "FORGETLESS_CACHE=DIR for the probe cache"
    )
    assert path.read_text() == old  # the previous complete file is still there
    assert sorted(p.name for p in path.parent.iterdir()) == ["eval.json"]  # no temporary left behind


def test_other_errors_are_not_called_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as caught:
        write_bytes_atomic(tmp_path / "a.bin", b"data")
    assert caught.value.errno == errno.EIO and not isinstance(caught.value, ForgetlessError)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_get_the_umask_permissions_like_any_other_file(umask: int, tmp_path: Path) -> None:
    old = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "r.json", {"a": 1})
        write_bytes_atomic(tmp_path / "r.png", b"\x89PNG")
        (tmp_path / "plain.txt").write_text("as open() makes it")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask  # 0o644 under the usual 022: readable like a checkpoint
    for name in ("r.json", "r.png", "plain.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


def test_human_size() -> None:
    sizes = [human_size(n) for n in (0, 950, 1000, 12_345, 4_100_000_000)]
    assert sizes == ["0 B", "950 B", "1.0 kB", "12.3 kB", "4.1 GB"]
