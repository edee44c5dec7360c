"""Progress bars for scoring (rich), silent when output is not a terminal.

Here, beside the scoring that draws them, rather than in report/: the guard scores probes during
training and must not import the report layer above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable; shows a bar on a terminal, does nothing elsewhere."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, disable=not console.is_terminal, transient=False) as progress:
        task = progress.add_task(escape(label), total=total or None)  # labels name probes and files: not markup
        yield lambda n: progress.advance(task, n)
