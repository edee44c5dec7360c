"""`forgetless demo`: fine-tune the packaged SmolLM2-135M offline and show what it gained and forgot."""

from __future__ import annotations

from typing import Annotated

import typer

from forgetless.cli.friendly import friendly
from forgetless.cli.options import Out
from forgetless.errors import ForgetlessError


@friendly
def demo_command(
    quick: Annotated[bool, typer.Option(help="About 5 minutes: fewer steps, the one-minute probe suite.")] = False,
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated: full, l2sp, ewc, replay, lora, repair (needs full); genreplay, expand, sam."
        ),
    ] = "full,l2sp,ewc,replay,lora,repair",
    scenario: Annotated[
        str, typer.Option(help="sst2: every method on a narrow task; code: where forgetting begins on stdlib source.")
    ] = "sst2",
    seed: Annotated[int, typer.Option(help="Training seed (data order, dropout, replay draws).")] = 0,
    out: Out = None,
) -> None:
    """Fine-tune SmolLM2-135M offline and show what it gained and forgot: SST-2 with every method, or code."""
    if scenario == "code":
        from forgetless.pipeline.code_demo import run_code_demo

        run_code_demo(quick=quick, out=out, seed=seed)
        return
    if scenario != "sst2":
        raise ForgetlessError(f"unknown scenario '{scenario}'", "choose sst2 (the default) or code")
    from forgetless.pipeline.demo import run_demo

    run_demo(quick=quick, out=out, methods=[m.strip() for m in methods.split(",") if m.strip()], seed=seed)
