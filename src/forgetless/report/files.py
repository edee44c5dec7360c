"""The files of an eval or an audit: JSON, Markdown and report.html, as the CLI and `.write()` write them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forgetless.report.html import write_report
from forgetless.report.markdown import audit_markdown, eval_markdown
from forgetless.report.terminal import write_outputs

MARKDOWN = {"eval": eval_markdown, "audit": audit_markdown}


def write_files(folder: Path, kind: str, data: dict[str, Any]) -> list[Path]:
    """Write `KIND.json`, `KIND.md` and `report.html` (each atomically) for kind eval or audit."""
    paths = write_outputs(folder, data, MARKDOWN[kind](data), kind)
    paths.append(write_report(folder, kind, data))
    return paths
