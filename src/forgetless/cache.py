"""Probe results cached by content: model weights, the exact scoring requests, and the version.

The key hashes the model's fingerprint with the tokenized requests a probe will score, so a cached
result is reused only when the same weights would score the same tokens; renaming a probe or
editing its description does not invalidate it, editing its data or template does.

Each entry stores a checksum of its result beside it. An entry edited by hand, truncated, or
from an older layout is a miss: it is recomputed and rewritten, never printed as a measurement.
The cache only ever saves time: a failing write warns and the results are still written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from forgetless import __version__
from forgetless.errors import ForgetlessError
from forgetless.paths import DiskFullError, cache_dir, write_json_atomic
from forgetless.probes.base import ProbeResult

log = logging.getLogger(__name__)


def result_key(fingerprint: str, kind: str, material: Any, device: str, extra: dict[str, Any]) -> str:
    payload = {
        "v": __version__,
        "model": fingerprint,
        "kind": kind,
        "device": device,
        "extra": extra,
        "material": material,
    }
    return hashlib.blake2b(json.dumps(payload, sort_keys=True).encode(), digest_size=16).hexdigest()


def checksum(data: Any) -> str:
    """blake2b of the canonical JSON of `data`: equal for the dict written and the dict read back."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "blake2b:" + hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


class ResultCache:
    """Results on disk under `root/results`, one JSON file per key.

    Args:
        root: the cache folder; default $FORGETLESS_CACHE or ~/.cache/forgetless.
        reuse: False (--no-cache) recomputes every probe and rewrites its entry, so a forced
            recompute also repairs the cache for the next run instead of bypassing it.
    """

    def __init__(self, root: Path | None = None, reuse: bool = True) -> None:
        self.root = (root or cache_dir()) / "results"
        self.reuse = reuse
        self._warned = False

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> ProbeResult | None:
        path = self._path(key)
        if not self.reuse or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry["checksum"] != checksum(entry["result"]):
                log.warning("cache entry %s does not match its checksum (edited or damaged): recomputing", path)
                return None
            return ProbeResult.from_dict(entry["result"])
        except (OSError, ValueError, TypeError, KeyError):
            return None  # unreadable, or an older layout without a checksum: recomputed, not trusted

    def put(self, key: str, result: ProbeResult) -> None:
        data = result.to_dict()
        try:
            write_json_atomic(self._path(key), {"checksum": checksum(data), "result": data})
        except (OSError, ForgetlessError) as error:
            self._warn(error)

    def _warn(self, error: Exception) -> None:
        # Once per cache: with a full disk every probe would repeat the same lines.
        if self._warned:
            return
        self._warned = True
        if isinstance(error, DiskFullError):
            problem, fix = error.problem, "free space there, or set FORGETLESS_CACHE to a folder on another disk"
        else:
            problem, fix = str(error), "set FORGETLESS_CACHE to a folder you can write to"
        log.warning(
            "probe results are not being cached: %s\n  the results are still written, but the next run "
            "recomputes them\n  fix: %s",
            problem,
            fix,
        )
