"""`forgetless repair BASE TUNED --budget ...`: interpolate a fine-tune back toward its base until it meets a budget."""

from __future__ import annotations

from typing import Annotated

import typer

from forgetless.cli.exit_codes import HELP
from forgetless.cli.friendly import friendly
from forgetless.cli.options import (
    AdapterBase,
    BatchTokens,
    Device,
    Dtype,
    FailOn,
    FalseAlarm,
    Limit,
    NoCache,
    Out,
    Suite,
    Target,
)

REPAIR_EPILOG = HELP + " With a budget the code is the repaired model's status (alpha 0, the base, is within)."


@friendly
def repair_command(
    base_model: Annotated[str, typer.Argument(metavar="BASE", help="The model before fine-tuning.")],
    tuned_model: Annotated[str, typer.Argument(metavar="TUNED", help="The fine-tuned model (or PEFT LoRA adapter).")],
    budget: Annotated[
        str, typer.Option(help="Forgetting budget, e.g. '2pt,5%,lambada:10%' (accuracy points, perplexity %).")
    ] = "",
    suite: Suite = "general",
    target: Target = None,
    limit: Limit = None,
    steps: Annotated[int, typer.Option(help="Bisection steps: alpha is exact to 1/2**steps.")] = 4,
    out: Out = None,
    device: Device = "auto",
    dtype: Dtype = "float32",
    batch_tokens: BatchTokens = 4096,
    no_cache: NoCache = False,
    base: AdapterBase = None,
    false_alarm: FalseAlarm = 0.05,
    accept: Annotated[
        str,
        typer.Option(
            help="within: the largest alpha shown within budget, else the base (default); not-over: the largest "
            "alpha with no probe shown over, which may be inconclusive."
        ),
    ] = "within",
    fail_on: FailOn = "over",
) -> None:
    """Interpolate TUNED back toward BASE (WiSE-FT) just enough to meet the budget; write the repaired model."""
    from forgetless.cli.commands import run_repair

    code = run_repair(
        base_model,
        tuned_model,
        budget,
        suite,
        target,
        limit,
        steps,
        out,
        device,
        dtype,
        batch_tokens,
        no_cache,
        base,
        false_alarm,
        accept,
        fail_on,
    )
    raise typer.Exit(code)
