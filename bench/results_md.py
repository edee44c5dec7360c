"""Refresh one benchmark's generated block in bench/RESULTS.md, leaving every other section as it is."""

from __future__ import annotations

from pathlib import Path


def write_block(path: Path, begin: str, end: str, block: str, heading: str) -> None:
    """Replace the text from `begin` to `end` with `block` (which starts and ends with them); append it under
    `heading` the first time."""
    text = path.read_text(encoding="utf-8")
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text += f"\n## {heading}\n\n{block}\n"
    path.write_text(text, encoding="utf-8")
