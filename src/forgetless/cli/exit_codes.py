"""Exit codes of `forgetless audit`, `run` and `repair`: a CI job fails a fine-tune that forgot more than allowed.

With a budget, the code follows the status of what the command judged or returned (the audited model; the
run's final model; the repaired model):

| code | meaning |
|---|---|
| 0 | `within` (every budgeted check shown within); `inconclusive` without `--fail-on inconclusive`; no budget |
| 1 | forgetless itself failed (an unexpected error, with a traceback): not a verdict on the model |
| 2 | bad input: a flag, a path, a config, a budget or lm-eval samples that cannot be used (`error:` and the fix) |
| 3 | status `over`: a probe's loss lies beyond noise past its limit (the interval wholly past it) |
| 4 | only with `--fail-on inconclusive`: status `inconclusive`, none over but some check undecided |

Why `inconclusive` exits 0 by default: an over verdict is a proof (at the false-alarm rate, `--false-alarm`),
while inconclusive means the items cannot tell the loss from the limit. A gate that failed on it would fail
most fine-tunes judged on a few hundred items, whatever they forgot (a paired accuracy interval on 200 items
is several points wide), and would teach people to ignore it. Exit 0 is not a claim of "within": the line
printed before it says `inconclusive` and which probes; those who need every probe proven within budget
pass `--fail-on inconclusive`, and then size their probes to decide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from forgetless.errors import ForgetlessError

if TYPE_CHECKING:  # main.py imports this module on every command: nothing heavy at import time
    from forgetless.evaluation.results import Audit

OK = 0
BAD_INPUT = 2
OVER_BUDGET = 3
INCONCLUSIVE = 4
FailOn = Literal["over", "inconclusive"]

HELP = (
    "Exit codes: 0 within budget, or inconclusive without --fail-on inconclusive (or no budget); 2 bad input (a "
    "flag, path, config, budget or samples that cannot be used); 3 over budget beyond noise; 4 with --fail-on "
    "inconclusive, none over but some check undecided; 1 forgetless itself crashed (a traceback, not a verdict)."
)
FAIL_ON_HELP = (
    "over: exit 3 when over budget (default; inconclusive exits 0, saying inconclusive); inconclusive: also exit 4 "
    "when a check is undecided, so every probe must be proven within."
)
WHAT = {OK: "pass", OVER_BUDGET: "fail: over budget", INCONCLUSIVE: "fail: inconclusive (--fail-on inconclusive)"}


def exit_line(code: int, status: str | None) -> str:
    """The last line a gate prints: the code and why; an inconclusive pass never reads as within."""
    if code == OK and status in ("inconclusive", "noise"):
        why = "pass: inconclusive, not over budget but not shown within it; --fail-on inconclusive exits 4"
    elif code == OK and status == "within":
        why = "pass: within budget"
    else:
        why = WHAT[code]
    return f"exit {code} ({why})"


def check_gate_options(budget: str | None, fail_on: str) -> None:
    """`--fail-on`, checked before any model loads."""
    if fail_on not in ("over", "inconclusive"):
        raise ForgetlessError(
            f"--fail-on '{fail_on}' is not over or inconclusive", "pass --fail-on over or inconclusive"
        )
    if fail_on == "inconclusive" and not budget:
        raise ForgetlessError(
            "--fail-on inconclusive needs a budget to be inconclusive about", "add --budget, e.g. --budget '2pt,5%'"
        )


def gate(audit: Audit, fail_on: FailOn | str = "over") -> int:
    """The audit's exit code, said in one line; a budget that bounds no probe is an error, not a pass.

    A CI gate whose budget checks nothing (`--budget 2pt` on a suite of perplexity probes) would pass
    every fine-tune: that is a mistake in the job, so it exits BAD_INPUT (after the files are written).
    """
    from forgetless.report.terminal import err, say

    if audit.budget is None:
        return OK
    if not audit.checks:
        probes = ", ".join(f"{c.probe} ({c.metric})" for c in audit.primary().values() if c.role == "general")
        raise ForgetlessError(
            f"budget '{audit.budget}' bounds none of the audited probes: {probes or 'none'}",
            "use the unit of their measures (pt for accuracies, % for perplexities, nats for a multiple-choice "
            "gold answer's log-probability) or name the probes",
        )
    from forgetless.evaluation.results import budget_status

    code = gate_code(audit, fail_on)  # type: ignore[arg-type]
    say(exit_line(code, budget_status(audit.checks)), console=err)
    return code


def gate_code(audit: Audit, fail_on: FailOn = "over") -> int:
    """The exit code of an audit: OVER_BUDGET when a check is over, INCONCLUSIVE when asked to fail on one."""
    from forgetless.evaluation.results import budget_status

    return status_code(budget_status(audit.checks), fail_on)


def status_code(status: str | None, fail_on: FailOn | str = "over") -> int:
    """The exit code of a status: over 3; inconclusive 4 with --fail-on inconclusive, else 0; within or none 0."""
    if status == "over":
        return OVER_BUDGET
    if status in ("inconclusive", "noise") and fail_on == "inconclusive":  # "noise": documents before 0.4
        return INCONCLUSIVE
    return OK


def gate_status(status: str | None, budget: str | None, fail_on: FailOn | str = "over") -> int:
    """`run` and `repair`: the exit code of the returned model's status, said in one line (nothing without a budget)."""
    from forgetless.report.terminal import err, say

    if not budget:
        return OK
    code = status_code(status, fail_on)
    say(exit_line(code, status), console=err)
    return code
