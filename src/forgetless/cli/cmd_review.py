"""`forgetless forecast | calibrate-kl`: look back at finished runs' guard records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgetless.cli.friendly import friendly


@friendly
def forecast_command(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A watched run's output_dir (a ForgetGuard's, or a watch.json).")
    ],
    share: Annotated[float, typer.Option(help="The share of the checks the forecast is fitted on.")] = 0.25,
    level: Annotated[float, typer.Option(help="Two-sided level of the forecast intervals.")] = 0.9,
) -> None:
    """Re-fit a finished or stopped run's forgetting from its first checks and set it against what happened."""
    from forgetless.cli.forecast import run_forecast

    run_forecast(run_dir, share, level)


@friendly
def calibrate_kl_command(
    run_dirs: Annotated[
        list[Path], typer.Argument(metavar="RUN_DIR", help="Finished runs' output_dirs, each with guard.kl on.")
    ],
    budget: Annotated[
        str | None,
        typer.Option(help="Probe limits to turn into KL limits, e.g. 'arc_easy:5pt,lambada:10%' ('5pt': every probe)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the fit as JSON (forgetless.klcalibration/1).")] = None,
    level: Annotated[float, typer.Option(help="Two-sided level of the slopes' intervals.")] = 0.9,
    final_only: Annotated[
        bool, typer.Option("--final-only", help="Fit each run's end only, not its checks during training.")
    ] = False,
) -> None:
    """What a KL value has meant in your runs: each probe's change per nat of KL, and KL limits from probe limits."""
    from forgetless.cli.calibrate_kl import run_calibrate_kl

    run_calibrate_kl(run_dirs, budget, out, level, final_only)
