"""`forgetless plan CONFIG`: what the run's budget can decide before training (guard.plan), no model loaded.

`plan` counts the items each watched probe's data hold (reading the packaged data, about a second);
`validate` prints the same rows from the probes' configured limits only, without reading data.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import typer

from forgetless.cli.friendly import friendly
from forgetless.cli.options import ConfigPath, Overrides
from forgetless.guard.power import CHURN, PPL_DOC_SD

PLAN_HEADER = ["limit", "probe", "items", "over level", "80% power from", "power at", "within", "80% needs", "data"]


@friendly
def plan_command(
    config: ConfigPath,
    overrides: Overrides = None,
    churn: Annotated[
        float,
        typer.Option(min=0.0, max=0.9, help="Share of items whose answer flips when nothing is lost (half each way)."),
    ] = CHURN,
    ppl_doc_sd: Annotated[
        float,
        typer.Option(
            min=1e-4, help="Assumed sd over documents of the change of log perplexity (unknown before training)."
        ),
    ] = PPL_DOC_SD,
    false_alarm: Annotated[
        float | None,
        typer.Option(min=1e-6, max=0.5, help="The run's false-alarm rate (sets guard.false_alarm)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Before training: for each budgeted limit, the smallest breach the last check calls over with 80% power,
    whether it can call the run within, and the items that would take."""
    from forgetless.config import load_run_config
    from forgetless.guard.plan import summary, within_chance
    from forgetless.report.terminal import print_table, say

    extra = [] if false_alarm is None else [f"guard.false_alarm={false_alarm}"]
    loaded, _ = load_run_config(config, [*(overrides or []), *extra])  # every error before anything heavy
    rows, rate = plan_rows(loaded, count_data=True, churn=churn, ppl_doc_sd=ppl_doc_sd)
    if as_json:
        payload = {
            "config": str(config),
            "budget": str(loaded.guard.budget or ""),
            "false_alarm": rate,
            "churn": churn,
            "ppl_doc_sd": ppl_doc_sd,
            "rows": [r.to_dict() for r in rows],
            "within_chance": within_chance(rows),
            "summary": summary(rows, rate),
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    if not rows:
        say(f"{config}: no budget (guard.budget) on the watched probes: nothing to plan; e.g. guard.budget='2pt,5%'")
        return
    title = f"what the budget '{loaded.guard.budget}' can decide at the run's last check (80% power)"
    print_table(title, PLAN_HEADER, [_cells(r) for r in rows])
    for row in rows:
        say(row.describe())
    say((summary(rows, rate), "bold"))


def plan_rows(
    config: Any, count_data: bool, churn: float = CHURN, ppl_doc_sd: float = PPL_DOC_SD
) -> tuple[list[Any], float]:
    """The plan of a loaded run config's budget on its watched probes, and the false-alarm rate of a stage.
    `count_data`: read each probe's data for the items it holds (else its configured limit only)."""
    from forgetless.guard.budget import Budget, probe_metrics
    from forgetless.guard.plan import plan_budget
    from forgetless.pipeline.run import stage_false_alarm
    from forgetless.suites import load_suite

    budget = Budget.parse(config.guard.budget)
    rate = stage_false_alarm(config)  # the run's rate, shared equally by its stages
    if not budget:
        return [], rate
    watched = load_suite(config.guard.probes or config.suite)
    metrics = probe_metrics(watched.probes)
    items = {
        p.config.name: (metrics[p.config.name], *_items(p, count_data))
        for p in watched.probes
        if p.config.name in metrics
    }
    return plan_budget(budget, items, rate, _checks(config), churn, ppl_doc_sd), rate


def _items(probe: Any, count_data: bool) -> tuple[int | None, int | None]:
    """(items scored, items the data hold): the configured limit, capped by the data when they are read."""
    limit = probe.config.limit
    prompts = getattr(probe.config, "prompts", None)
    if prompts:  # a canary's inline prompts: only those that say what to expect are scored
        held = sum(1 for p in prompts if getattr(p, "expect", None))
        return (held if limit is None else min(limit, held)), len(prompts)
    available = _available(probe) if count_data else None
    if available is None:
        return limit, None
    return (available if limit is None else min(limit, available)), available


def _available(probe: Any) -> int | None:
    """How many items the probe's data hold; None when it has no `source` (lm_eval tasks) or it cannot be read."""
    from forgetless.data.sources import load_records
    from forgetless.errors import ForgetlessError

    if not probe.config.source:
        return None
    try:
        return len(load_records(probe.config.source, probe.base_dir, what=f"probe '{probe.config.name}'"))
    except (ForgetlessError, OSError, ValueError):
        return None


def _checks(config: Any) -> int | None:
    """Checks per stage with a fixed cadence (the last step is always checked); None for `every: auto` or
    stages of different lengths."""
    every = config.guard.every
    if every == "auto":
        return None
    counts = {math.ceil((stage.steps or config.training.steps) / every) for stage in config.stages}
    return counts.pop() if len(counts) == 1 else None


def _cells(row: Any) -> list[str]:
    ppl = row.unit == "percent"
    sign = "%" if ppl else " pt"
    if not row.planned:
        blank = "-"
        items = "?" if row.items is None else f"{row.items:,}"
        return [row.limit, row.probe, items, _level(row.over_level), blank, blank, blank, blank, _held(row)]
    breach = "never" if row.breach is None else f"{row.breach:.1f}{sign}"
    within = f"{'yes' if row.within_reachable else 'no'} ({row.within_power:.0%})"
    return [
        row.limit,
        row.probe,
        f"{row.items:,}",
        _level(row.over_level),
        breach,
        f"{row.test_loss:g}{sign}: {row.test_power:.0%}",
        within,
        f"{row.items_over:,} over, {'-' if row.items_within is None else f'{row.items_within:,}'} within",
        _held(row),
    ]


def _level(x: float) -> str:
    return f"{100 * x:.3g}%"


def _held(row: Any) -> str:
    return "?" if row.available is None else f"{row.available:,}"


def validate_lines(config: Any) -> list[str]:
    """`validate`'s short form of the plan: a line per limit from the configured limits (no data read), the
    run-level line and the assumptions once."""
    from forgetless.guard.plan import summary

    rows, rate = plan_rows(config, count_data=False)
    if not rows:
        return []
    assumptions = dict.fromkeys(r.assumption for r in rows if r.planned)
    return [r.short() for r in rows] + [
        f"{summary(rows, rate)}; {'; '.join(assumptions)}",
        "details, --churn and --ppl-doc-sd: forgetless plan CONFIG",
    ]
