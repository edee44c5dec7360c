"""Where forgetless keeps its cache, and atomic writes so no file is ever half-written."""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError

# ENOSPC: the disk is full; EDQUOT: the user's quota is. Both are fixed the same way, by the user.
DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFullError(ForgetlessError):
    """Writing `path` failed for lack of space; `size` is how many bytes were being written."""

    def __init__(self, path: Path, size: int, error: OSError) -> None:
        self.path, self.size = path, size
        reason = "the disk quota is exceeded" if error.errno != errno.ENOSPC else "the disk is full"
        free = _free(path) if error.errno == errno.ENOSPC else None
        room = f"; {human_size(free)} free there" if free is not None else ""
        super().__init__(
            f"could not write {path}: {reason} ({human_size(size)} to write{room})",
            f"free at least {human_size(size)} on that disk, or write elsewhere: --out DIR for results, "
            "FORGETLESS_CACHE=DIR for the probe cache",
        )


def cache_dir() -> Path:
    """The cache root: $FORGETLESS_CACHE, else ~/.cache/forgetless."""
    root = os.environ.get("FORGETLESS_CACHE") or Path.home() / ".cache" / "forgetless"
    return Path(root)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers see all or nothing.

    The file gets the permissions of any file the user creates (0o666 less the umask), not
    mkstemp's 0o600, so results can be shared like checkpoints. A full disk or quota raises
    DiskFullError naming the path and the size; the old file, if any, is left as it was.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask, as for open(path, "w")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # Some filesystems (NFS, quotas) report a full disk only here: find out before the
            # rename replaces a good file with one whose bytes never reached the disk.
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            raise DiskFullError(path, len(data), error) from error
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Like write_bytes_atomic, for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def human_size(n: int) -> str:
    """Bytes in decimal units, as `df -H` shows them: 950 B, 12.3 kB, 4.1 GB."""
    size, unit = float(n), 0
    while size >= 1000 and unit < 4:
        size, unit = size / 1000, unit + 1
    return f"{n} B" if unit == 0 else f"{size:.1f} {('kB', 'MB', 'GB', 'TB')[unit - 1]}"


def _free(path: Path) -> int | None:
    """Free bytes on the disk that holds `path` (its nearest existing folder), if it can be read."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None
