"""Terminal output and result files: rich tables on stdout, errors on stderr, atomic writes."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from forgetless.paths import write_json_atomic, write_text_atomic
from forgetless.report.status import STATUS_COLORS, STATUSES

# Off a terminal (logs, CI) rich would wrap tables at 80 columns; logs have room for more.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(text).name if "/" in text else text).strip("-") or "model"


def say(*parts: str | tuple[str, str], console: Console = out) -> None:
    """Print one line of plain text, pieces optionally styled: `say(("ok", "green"), ": ", path)`.

    Nothing printed is read as rich markup: messages carry user text (a model folder named
    `run[/b]` or `x[red]`), which as markup would crash the printer or vanish from the line. Nor is a line
    broken by rich: a path or the YAML `validate` prints stays whole, to copy.
    """
    console.print(Text.assemble(*parts), highlight=False, soft_wrap=True)


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    # Titles and cells carry model names, paths and probe names: plain Text, never markup.
    table = Table(title=Text(title), title_justify="left")
    for column in header:
        table.add_column(Text(column), overflow="fold")
    for row in rows:
        style = {"forgot": "red", "improved": "green"}.get(row[-1])
        # A budget status, alone in its cell, in its colour (report.status: within, inconclusive, over).
        cells = [Text(cell, style=STATUS_COLORS[cell]) if cell in STATUSES else Text(cell) for cell in row]
        table.add_row(*cells, style=style)
    out.print(table)


def write_outputs(folder: Path, data: dict[str, Any], markdown: str, stem: str) -> list[Path]:
    """JSON first, then Markdown; each appears only complete (atomic rename)."""
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    write_json_atomic(json_path, data)
    write_text_atomic(md_path, markdown)
    return [json_path, md_path]
