"""The `forgetless` command: builds the typer app and registers each command, defined in its own module.

Commands are listed in `--help` in the order they are registered here.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from forgetless.cli.cmd_demo import demo_command
from forgetless.cli.cmd_eval import AUDIT_EPILOG, audit_command, compare_command, eval_command
from forgetless.cli.cmd_info import install_data_command, ls_command, schema_command
from forgetless.cli.cmd_plan import plan_command
from forgetless.cli.cmd_repair import REPAIR_EPILOG, repair_command
from forgetless.cli.cmd_review import calibrate_kl_command, forecast_command
from forgetless.cli.cmd_run import RUN_EPILOG, classify_command, run_command, validate_command

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Fine-tune language models without losing what they know."
)

app.command("eval")(eval_command)
app.command("audit", epilog=AUDIT_EPILOG)(audit_command)
app.command("repair", epilog=REPAIR_EPILOG)(repair_command)
app.command("compare")(compare_command)
app.command("forecast")(forecast_command)
app.command("calibrate-kl")(calibrate_kl_command)
app.command("ls")(ls_command)
app.command("install-data")(install_data_command)
app.command("schema")(schema_command)
app.command("run", epilog=RUN_EPILOG)(run_command)
app.command("classify")(classify_command)
app.command("validate")(validate_command)
app.command("plan")(plan_command)
app.command("demo")(demo_command)


def _version(value: bool) -> None:
    if value:
        from forgetless import __version__

        typer.echo(f"forgetless {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Fine-tune language models without losing what they know."""


def quiet_libraries() -> None:
    """Off a terminal, the progress bars of transformers and datasets are only noise in logs."""
    if not sys.stderr.isatty():
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()


def main() -> None:
    quiet_libraries()
    app()
