"""Options several commands share, declared once as typer `Annotated` aliases.

A command still names each option in its signature (typer builds one parameter per argument, and the
order of the signature is the order of `--help`), but the flag, its type and its help live here only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgetless.cli.exit_codes import FAIL_ON_HELP

Suite = Annotated[
    str, typer.Option("--suite", "-s", help="Built-in suite name (see `forgetless ls suites`) or a suite YAML file.")
]
Target = Annotated[
    Path | None,
    typer.Option(help="Your domain's held-out text (file, folder or JSONL with `text`): scored as the target probe."),
]
Limit = Annotated[
    int | None, typer.Option(help="Cap every probe at this many items (quick looks; changes the numbers).")
]
Out = Annotated[Path | None, typer.Option(help="Folder for the JSON and Markdown results.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")]
Dtype = Annotated[str, typer.Option(help="float32, bfloat16 or float16.")]
BatchTokens = Annotated[int, typer.Option(help="Tokens per scoring batch (memory against speed).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Recompute instead of reusing cached probe results.")]
FalseAlarm = Annotated[
    float,
    typer.Option(
        min=1e-6,
        max=0.5,
        help="Chance of calling any probe over its limit when every probe is within it (all probes, all looks).",
    ),
]
FailOn = Annotated[str, typer.Option(help=FAIL_ON_HELP)]  # `audit`, `run`, `repair`: see cli/exit_codes.py
AdapterBase = Annotated[
    str | None, typer.Option("--base", help="Base model for a PEFT adapter that does not name a loadable one.")
]

# `run`, `classify` and `validate` read a run config and take key=value overrides of it.
ConfigPath = Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config YAML.")]
Overrides = Annotated[
    list[str] | None, typer.Argument(metavar="[KEY=VALUE]...", help="Overrides, e.g. training.steps=20.")
]
