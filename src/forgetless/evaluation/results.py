"""Typed results: an evaluation of one model (`EvalResult`) and an audit of a fine-tune (`Audit`).

They are what `forgetless.evaluate` and `forgetless.audit` return and what the CLI writes:
`to_json()` is exactly the document of docs/schema.md (`forgetless.eval/1`, `forgetless.audit/1`),
`from_json()` reads one back, and `write(folder)` writes the JSON, the Markdown and report.html.
Keys a writer adds beyond the schema (a run stage's `training`, classify's `task`) travel in `extra`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.probes import Comparison, Metric, ProbeResult
from forgetless.suites.renamed import renamed_hint

EVAL_SCHEMA = "forgetless.eval/1"
AUDIT_SCHEMA = "forgetless.audit/1"


@dataclass
class ModelInfo:
    """Which model was scored: `fingerprint` hashes its weights and vocabulary (equal: scores equal)."""

    spec: str
    source: str  # builtin | folder | gguf | adapter | hub | memory | training
    fingerprint: str
    dtype: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # the loader's own: adapter base, encoder, ...

    def to_json(self) -> dict[str, Any]:
        dtype = {} if self.dtype is None else {"dtype": self.dtype}
        return {"spec": self.spec, "source": self.source, "fingerprint": self.fingerprint, **dtype, **self.details}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelInfo:
        known = {"spec", "source", "fingerprint", "dtype"}
        details = {k: v for k, v in data.items() if k not in known}
        return cls(data["spec"], data["source"], data["fingerprint"], data.get("dtype"), details)


@dataclass
class SuiteInfo:
    name: str
    path: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path}


@dataclass
class ProbeScores(ProbeResult):
    """One probe's scores in an evaluation: `metrics[name]` has `value`, `stderr` and the 95% `low`/`high`."""

    cached: bool = False  # read from the result cache rather than scored now

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeScores:
        metrics = {k: Metric(**v) for k, v in data["metrics"].items()}
        return cls(**{**data, "metrics": metrics})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class EvalResult:
    """One model scored on a suite: each probe's metrics with their 95% intervals.

    Attributes:
        model: which model, with its weights' fingerprint.
        suite: the suite's name and file.
        probes: one entry per probe, in suite order (then the target).
        probe_configs: {probe: hash of the exact requests it scored}; equal hashes, comparable results.
        seconds: wall time of the evaluation.
        created: ISO time (UTC) of the evaluation.
        forgetless_version: the version that scored it.
        extra: keys beyond the schema that a writer added (kept as they are).
    """

    model: ModelInfo
    suite: SuiteInfo
    probes: list[ProbeScores]
    probe_configs: dict[str, str]
    seconds: float
    created: str
    forgetless_version: str
    extra: dict[str, Any] = field(default_factory=dict)

    def probe(self, name: str) -> ProbeScores:
        """The scores of the probe called `name` (KeyError naming the probes there are)."""
        for p in self.probes:
            if p.name == name:
                return p
        names = [p.name for p in self.probes]
        hint = renamed_hint(name, names)  # a built-in probe's old name: its new one and why
        raise KeyError(f"no probe '{name}' in this evaluation; {hint + '; ' if hint else ''}probes: {', '.join(names)}")

    def scores(self) -> dict[str, float]:
        """{probe: value of its primary metric}: the one number per probe that verdicts use."""
        return {p.name: p.metrics[p.primary].value for p in self.probes if p.primary in p.metrics}

    def to_json(self) -> dict[str, Any]:
        """The `forgetless.eval/1` document, key for key as `eval.json` holds it."""
        return {
            "schema": EVAL_SCHEMA,
            "forgetless_version": self.forgetless_version,
            "created": self.created,
            "model": self.model.to_json(),
            "suite": self.suite.to_json(),
            "probes": [p.to_json() for p in self.probes],
            "probe_configs": dict(self.probe_configs),
            "seconds": self.seconds,
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalResult:
        """Read a `forgetless.eval/1` document (a parsed `eval.json`, or an audit's `base` / `tuned`)."""
        _check_schema(data, EVAL_SCHEMA)
        known = {"schema", "forgetless_version", "created", "model", "suite", "probes", "probe_configs", "seconds"}
        return cls(
            model=ModelInfo.from_json(data["model"]),
            suite=SuiteInfo(**data["suite"]),
            probes=[ProbeScores.from_json(p) for p in data["probes"]],
            probe_configs=dict(data["probe_configs"]),
            seconds=data["seconds"],
            created=data["created"],
            forgetless_version=data["forgetless_version"],
            extra={k: v for k, v in data.items() if k not in known},
        )

    def write(self, folder: str | Path) -> list[Path]:
        """Write `eval.json`, `eval.md` and `report.html` into `folder` (created); returns their paths."""
        from forgetless.report.files import write_files

        return write_files(Path(folder), "eval", self.to_json())


@dataclass
class BudgetCheck:
    """One probe against its limit: `change` is the loss in the limit's unit (positive = worse).

    `low` is the loss's lower bound at the one-sided `over_level` (the check's share of the run's
    false-alarm rate, guard.procedure) and `high` its upper bound at `within_level`, so [low, high]
    covers the loss with probability `level` = 1 - over_level - within_level; `status` is `over` when
    the whole interval is past the limit, `within` when it is wholly inside, `inconclusive` otherwise, and then
    `items_to_decide` estimates how many items would decide it. `p_over` is the one-sided p-value of
    "the loss is at most the limit" from the same test. Documents written before 0.4 lack these and
    may carry the old status `noise` (past the limit, interval not excluding zero).
    """

    probe: str
    metric: str
    change: float
    limit: float
    unit: str  # points | percent | nats
    status: str  # over | within | inconclusive
    low: float | None = None
    high: float | None = None
    level: float | None = None
    p_over: float | None = None
    items_to_decide: int | None = None
    over_level: float | None = None  # one-sided level of `over` (the check's share of the run's rate)
    within_level: float | None = None  # one-sided level of `within`
    p_within: float | None = None  # p-value of "the loss is at least the limit"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        unit = {"points": " points", "percent": "%", "nats": " nats", "kl": " nats"}.get(self.unit, f" {self.unit}")
        word = "rise" if self.unit in ("percent", "kl") else "drop"  # kl: the KL from the base (guard.kl_signal)
        digits = 3 if self.unit in ("nats", "kl") else 1
        text = f"{self.probe}: {self.metric} {word} {self.change:+.{digits}f}{unit}"
        if self.low is not None and self.high is not None and self.level is not None:
            text += f" [{self.low:+.{digits}f}, {self.high:+.{digits}f}] at {_level(self.level)}"
        text += f" (limit {self.limit:g}{unit}, {self.status}"
        if self.status == "inconclusive":
            more = f"about {self.items_to_decide} items" if self.items_to_decide else "more items"
            text += f": the interval straddles the limit; {more} would decide it"
        return text + ")"


STATUSES = ("within", "inconclusive", "over")  # a budget's verdict, best first; older documents may say "noise"


def _status(check: BudgetCheck | dict[str, Any]) -> str:
    return check.status if isinstance(check, BudgetCheck) else str(check["status"])


def budget_status(checks: Iterable[BudgetCheck | dict[str, Any]]) -> str | None:
    """The verdict of a set of checks: "over" if any is over, else "inconclusive" if any is undecided
    (inconclusive, or "noise" in documents before 0.4), else "within" if there is at least one check;
    None when there is none. Inconclusive is never within: within needs every check shown within."""
    statuses = [_status(c) for c in checks]
    if "over" in statuses:
        return "over"
    if any(s != "within" for s in statuses):  # inconclusive, noise, or a status this version does not know
        return "inconclusive"
    return "within" if statuses else None


def guard_status(guard: dict[str, Any] | None) -> str | None:
    """The status of a written `guard` (results.json, audit.json): its `status`, or for documents written
    before it existed (`within_budget`) the status of its `final` checks; never an old `within_budget: true`."""
    if not guard or not guard.get("budget"):
        return None
    if "status" in guard:
        return guard["status"]
    return budget_status(guard.get("final") or [])


def point_status(point: dict[str, Any]) -> str | None:
    """The status of a watch check or a repair point: its `status`, or for files written before it existed
    (a `within` boolean that only meant "no check over") the status of its checks; a baseline (step 0 or
    alpha 0, no checks) is within by definition."""
    if "status" in point:
        return point["status"]
    checks = point.get("checks") or []
    if not checks:
        return "within" if point.get("step") == 0 or point.get("alpha") == 0 else None
    return budget_status(checks)


def budget_state(checks: list[BudgetCheck], budget: str) -> str:
    """The line a terminal prints: OVER, within, or neither proven (never "within" while unclear)."""
    over = [c.probe for c in checks if c.status == "over"]
    unclear = [c.probe for c in checks if c.status in ("inconclusive", "noise")]
    if over:
        return f"OVER budget {budget}: {', '.join(dict.fromkeys(over))}"
    if unclear:
        return (
            f"not over budget {budget} beyond doubt, not within it either: {', '.join(dict.fromkeys(unclear))} "
            "inconclusive (more items would decide)"
        )
    return f"within budget {budget}"


def _level(level: float) -> str:
    """0.95 -> '95%', 0.99833 -> '99.83%': enough digits to tell a corrected level from 95%."""
    text = f"{100 * level:.4g}"
    return f"{text}%"


@dataclass
class Summary:
    verdicts: dict[str, str]  # {probe: verdict of its primary comparison}
    by_verdict: dict[str, list[str]]  # {forgot | kept | improved | info: [probes]}
    headline: str  # the sentence reports open with

    def to_json(self) -> dict[str, Any]:
        return {"verdicts": dict(self.verdicts), "by_verdict": dict(self.by_verdict), "headline": self.headline}


@dataclass
class Audit:
    """What a fine-tune forgot: base and tuned scored on the same items, compared probe by probe.

    Attributes:
        base: the evaluation of the model before fine-tuning.
        tuned: the evaluation of the fine-tuned model.
        comparisons: every paired comparison (`before`, `after`, `delta`, its 95% interval `low`/`high`,
            `p_value`, `verdict`), the primary metric of each probe first.
        summary: the verdict per probe and the headline.
        suite: the suite both were scored on.
        budget: the forgetting budget judged by (e.g. "2pt,5%"), or None.
        checks: with a budget, each budgeted general probe: its change, limit and status within/inconclusive/over.
        status: with a budget, `budget_status(checks)`: "over" when a probe is over its limit, "within" only
            when every check is shown within, "inconclusive" otherwise; None without a budget.
        false_alarm: with a budget, the chance of calling any probe over when none is (all checks together).
        created: ISO time (UTC) of the audit.
        forgetless_version: the version that made it.
        extra: keys beyond the schema that a writer added (classify's `task`, a demo's `training`).
    """

    base: EvalResult
    tuned: EvalResult
    comparisons: list[Comparison]
    summary: Summary
    suite: SuiteInfo
    created: str
    forgetless_version: str
    budget: str | None = None
    checks: list[BudgetCheck] = field(default_factory=list)
    status: str | None = None
    false_alarm: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdicts(self) -> dict[str, str]:
        """{probe: forgot | kept | improved | info}, from each probe's primary comparison."""
        return dict(self.summary.verdicts)

    @property
    def headline(self) -> str:
        return self.summary.headline

    def primary(self) -> dict[str, Comparison]:
        """{probe: its primary comparison}: the one the verdict and the budget use."""
        out: dict[str, Comparison] = {}
        for c in self.comparisons:
            out.setdefault(c.probe, c)
        return out

    @property
    def within_budget(self) -> bool | None:
        """Read-only, for code written before `status`: True only when `status` is "within" (an inconclusive
        audit is not within budget); None without a budget."""
        return None if self.budget is None else self.status == "within"

    @property
    def budget_verdict(self) -> str:
        """The budget in one line: OVER, within, or neither proven (inconclusive); empty without a budget."""
        return budget_state(self.checks, self.budget) if self.budget is not None else ""

    def budget_status(self) -> dict[str, str]:
        """{budgeted probe: within | inconclusive | over}; empty without a budget."""
        rank = {"over": 2, "inconclusive": 1, "noise": 1}
        out: dict[str, str] = {}
        for c in self.checks:  # a probe bound in two units (points and nats) shows its worse status
            if c.probe not in out or rank.get(c.status, 0) > rank.get(out[c.probe], 0):
                out[c.probe] = c.status
        return out

    def to_json(self) -> dict[str, Any]:
        """The `forgetless.audit/1` document, key for key as `audit.json` holds it.

        With a budget it has one more key, `guard`: `budget`, `final` (the checks) and `status`
        (within / inconclusive / over), as a run's `guard` has them.
        """
        data = {
            "schema": AUDIT_SCHEMA,
            "forgetless_version": self.forgetless_version,
            "created": self.created,
            "suite": self.suite.to_json(),
            "base": self.base.to_json(),
            "tuned": self.tuned.to_json(),
            "comparisons": [dataclasses.asdict(c) for c in self.comparisons],
            "summary": self.summary.to_json(),
        }
        if self.budget is not None:
            data["guard"] = {
                "budget": self.budget,
                "final": [c.to_dict() for c in self.checks],
                "status": self.status,
            }
            if self.false_alarm is not None:
                data["guard"]["false_alarm"] = self.false_alarm
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audit:
        """Read a `forgetless.audit/1` document (a parsed `audit.json`, or a run's `final`).

        A document written before `status` (with `within_budget`, which meant only "no probe over") gets the
        status of its checks: an inconclusive check makes it inconclusive, whatever `within_budget` said.
        """
        _check_schema(data, AUDIT_SCHEMA)
        known = {"schema", "forgetless_version", "created", "suite", "base", "tuned", "comparisons", "summary"}
        guard = data.get("guard")  # only in an audit against a budget
        budgeted = isinstance(guard, dict)
        if budgeted:
            known.add("guard")
        checks = [BudgetCheck(**c) for c in guard["final"]] if budgeted else []
        return cls(
            base=EvalResult.from_json(data["base"]),
            tuned=EvalResult.from_json(data["tuned"]),
            comparisons=[Comparison(**c) for c in data["comparisons"]],
            summary=Summary(**data["summary"]),
            suite=SuiteInfo(**data["suite"]),
            created=data["created"],
            forgetless_version=data["forgetless_version"],
            budget=guard["budget"] if budgeted else None,
            checks=checks,
            status=guard_status(guard) if budgeted else None,
            false_alarm=guard.get("false_alarm") if budgeted else None,
            extra={k: v for k, v in data.items() if k not in known},
        )

    def write(self, folder: str | Path) -> list[Path]:
        """Write `audit.json`, `audit.md` and `report.html` into `folder` (created); returns their paths."""
        from forgetless.report.files import write_files

        return write_files(Path(folder), "audit", self.to_json())


def _check_schema(data: dict[str, Any], schema: str) -> None:
    kind, _, _ = schema.partition("/")
    found = str(data.get("schema", ""))
    if not found.startswith(kind + "/"):
        raise ForgetlessError(f"this document has schema '{found}', not '{schema}'", f"pass a {kind} result")
