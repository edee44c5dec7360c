"""Probe results cached by content: model weights, the exact scoring requests, and the version.

The key hashes the model's fingerprint with the tokenized requests a probe will score, so a cached
result is reused only when the same weights would score the same tokens; renaming a probe or
editing its description does not invalidate it, editing its data or template does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from forgetless import __version__
from forgetless.paths import cache_dir, write_json_atomic
from forgetless.probes.base import ProbeResult


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


class ResultCache:
    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = (root or cache_dir()) / "results"
        self.enabled = enabled

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> ProbeResult | None:
        path = self._path(key)
        if not self.enabled or not path.is_file():
            return None
        try:
            return ProbeResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError):
            return None  # an unreadable entry (older schema) is recomputed, not trusted

    def put(self, key: str, result: ProbeResult) -> None:
        if self.enabled:
            write_json_atomic(self._path(key), result.to_dict())
