"""`forgetless run | validate | classify CONFIG [KEY=VALUE]...`: commands driven by a run config file."""

from __future__ import annotations

from typing import Annotated

import typer

from forgetless.cli.exit_codes import HELP
from forgetless.cli.friendly import friendly
from forgetless.cli.options import ConfigPath, FailOn, Overrides

RUN_EPILOG = HELP + " With a budget the code is the final model's status (after a rollback: the restored weights')."


@friendly
def run_command(
    config: ConfigPath,
    overrides: Overrides = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the interrupted run in output_dir from its last complete checkpoints (same settings only)."
        ),
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            help="Discard the earlier run in output_dir (checkpoints, watch state, method state, results) and start "
            "over. Without --resume or --fresh, a folder holding a run is refused."
        ),
    ] = False,
    budget: Annotated[
        str | None, typer.Option(help="Forgetting budget, e.g. '2pt,5%,lambada:10%' (sets guard.budget).")
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="On a breach of the budget: warn, stop, or rollback (to the best check shown within budget, else "
            "the base weights; guard.rollback_to=not_over for the older rule) (sets guard.policy)."
        ),
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="Check the budget every N steps, or auto (sets guard.every).")
    ] = None,
    auto: Annotated[
        bool,
        typer.Option(
            help="Choose the strength of l2sp/ewc/replay/lora by successive halving on short runs: the most "
            "target gain within the budget."
        ),
    ] = False,
    fail_on: FailOn = "over",
) -> None:
    """Baseline probes, fine-tune every stage with the configured methods, probes after each stage, results."""
    from forgetless.cli.commands import run_run

    guard = {"budget": budget, "policy": policy, "every": every}
    extra = [f"guard.{key}={value}" for key, value in guard.items() if value is not None]
    raise typer.Exit(run_run(config, [*(overrides or []), *extra], resume, auto, fresh, fail_on))


@friendly
def classify_command(config: ConfigPath, overrides: Overrides = None) -> None:
    """Give an encoder (minilm) a classification head, fine-tune it on a labelled task, audit what it forgot."""
    from forgetless.cli.classify import run_classify

    run_classify(config, overrides or [])


@friendly
def validate_command(config: ConfigPath, overrides: Overrides = None) -> None:
    """Check a run config without loading any model; report every problem at once."""
    from forgetless.cli.commands import run_validate

    run_validate(config, overrides or [])
