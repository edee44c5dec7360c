"""Every result schema the code writes is documented in docs/schema.md, at its current version."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_schema_is_documented() -> None:
    code = "\n".join(p.read_text() for p in (ROOT / "src" / "forgetless").rglob("*.py"))
    written = set(re.findall(r'"(forgetless\.[a-z]+/\d+)"', code))
    assert {"forgetless.eval/1", "forgetless.run/1", "forgetless.compare/1"} <= written
    documented = set(re.findall(r"`(forgetless\.[a-z]+/\d+)`", (ROOT / "docs" / "schema.md").read_text()))
    assert written <= documented, f"not in docs/schema.md: {sorted(written - documented)}"
