"""Exit codes of `forgetless audit`: a CI job fails a fine-tune that forgot more than its budget allows.

| code | meaning |
|---|---|
| 0 | no probe over budget (or no `--budget`); with `--fail-on inconclusive`, every check proven within |
| 1 | forgetless itself failed (an unexpected error, with a traceback): not a verdict on the model |
| 2 | bad input: a flag, a path, a budget or lm-eval samples that cannot be audited (`error:` and the fix) |
| 3 | a probe is over budget beyond noise: the interval of its loss lies wholly past its limit |
| 4 | only with `--fail-on inconclusive`: none over, but some check could not be decided either way |

Why `inconclusive` passes by default: an over verdict is a proof (at the audit's false-alarm rate,
`--false-alarm`), while inconclusive means the items cannot tell the loss from the limit. A gate
that failed on it would fail most fine-tunes audited on a few hundred items, whatever they forgot
(a paired accuracy interval on 200 items is several points wide), and would teach people to ignore it.
Those who need each probe proven within budget ask for it, and then size their probes to decide.
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
    "Exit codes: 0 no probe over budget (or no --budget); 2 bad input (a flag, path, budget or samples that "
    "cannot be audited); 3 a probe over budget beyond noise; 4 with --fail-on inconclusive, none over but some "
    "check undecided; 1 forgetless itself crashed (a traceback, not a verdict)."
)


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
    code = gate_code(audit, fail_on)  # type: ignore[arg-type]
    what = {OK: "pass", OVER_BUDGET: "fail: over budget", INCONCLUSIVE: "fail: inconclusive (--fail-on inconclusive)"}
    say(f"exit {code} ({what[code]})", console=err)
    return code


def gate_code(audit: Audit, fail_on: FailOn = "over") -> int:
    """The exit code of an audit: OVER_BUDGET when a check is over, INCONCLUSIVE when asked to fail on one."""
    status = set(audit.budget_status().values())
    if "over" in status:
        return OVER_BUDGET
    if fail_on == "inconclusive" and status & {"inconclusive", "noise"}:  # "noise": documents before 0.4
        return INCONCLUSIVE
    return OK
