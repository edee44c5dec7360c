"""`forgetless eval | audit | compare`: score a model, judge a fine-tune against its base, weigh fine-tunes."""

from __future__ import annotations

from pathlib import Path
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

# What scores a model; none of it applies to lm-eval's samples, which were scored already.
MODEL_OPTIONS = ("suite", "target", "limit", "device", "dtype", "batch_tokens", "no_cache", "base")
AUDIT_EPILOG = HELP


@friendly
def eval_command(
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Hub id, local folder, .gguf file, PEFT adapter folder, or smollm2-135m."),
    ] = "smollm2-135m",
    suite: Suite = "general",
    target: Target = None,
    limit: Limit = None,
    out: Out = None,
    device: Device = "auto",
    dtype: Dtype = "float32",
    batch_tokens: BatchTokens = 4096,
    no_cache: NoCache = False,
    base: AdapterBase = None,
) -> None:
    """Score a model on a probe suite; print a table, write JSON and Markdown."""
    from forgetless.cli.commands import run_eval

    run_eval(model, suite, target, limit, out, device, dtype, batch_tokens, no_cache, base)


@friendly
def audit_command(
    ctx: typer.Context,
    base_model: Annotated[
        str, typer.Argument(metavar="BASE", help="The model before fine-tuning (with --lm-eval-samples: its folder).")
    ],
    tuned_model: Annotated[
        str,
        typer.Argument(
            metavar="TUNED", help="The fine-tuned model or PEFT adapter (with --lm-eval-samples: its folder)."
        ),
    ],
    suite: Suite = "general",
    target: Target = None,
    limit: Limit = None,
    out: Out = None,
    device: Device = "auto",
    dtype: Dtype = "float32",
    batch_tokens: BatchTokens = 4096,
    no_cache: NoCache = False,
    base: AdapterBase = None,
    budget: Annotated[
        str | None,
        typer.Option(
            help="Forgetting budget to judge by, e.g. '2pt,5%,lambada:10%': within, inconclusive or over per probe."
        ),
    ] = None,
    false_alarm: FalseAlarm = 0.05,
    fail_on: FailOn = "over",
    lm_eval_samples: Annotated[
        bool,
        typer.Option(
            "--lm-eval-samples",
            help="BASE and TUNED are folders written by `lm_eval --log_samples --output_path`: audit every task "
            "in both from its logged samples, no model loaded.",
        ),
    ] = False,
) -> None:
    """What did TUNED forget of BASE? Paired before/after per probe, with noise bands and verdicts."""
    from forgetless.cli.commands import run_audit, run_audit_lm_eval
    from forgetless.cli.exit_codes import check_gate_options, gate

    check_gate_options(budget, fail_on)
    if lm_eval_samples:
        # By name: typer vendors its own click, whose ParameterSource is not click's.
        given = [n for n in MODEL_OPTIONS if getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"]
        result = run_audit_lm_eval(base_model, tuned_model, out, budget, false_alarm, given)
    else:
        result = run_audit(
            base_model,
            tuned_model,
            suite,
            target,
            limit,
            out,
            device,
            dtype,
            batch_tokens,
            no_cache,
            base,
            budget,
            false_alarm,
        )
    raise typer.Exit(gate(result, fail_on))


@friendly
def compare_command(
    results: Annotated[
        list[Path], typer.Argument(metavar="RESULT...", help="Run, audit, repair or demo folders (or their JSON).")
    ],
    budget: Annotated[
        str | None, typer.Option(help="Forgetting budget to judge them by (default: the one the runs share).")
    ] = None,
    out: Out = None,
) -> None:
    """Several fine-tunes of one base on one frontier: target gain against what was kept, Pareto marked."""
    from forgetless.cli.commands import run_compare

    run_compare(results, budget, out)
