"""Before training: what each budgeted limit can decide at the run's last check, and the items it would take.

For every limit the budget places on the watched probes (found by `Budget.check` itself, on synthetic
comparisons of each probe, so the plan bounds exactly what the guard will bound), at the last check's levels
(guard.procedure: `over` at `last_over_share(false_alarm)` split equally over the budgeted limits, `within`
at `false_alarm` for each):

- the smallest true loss called over with 80% power, and the power at the limit + 3 points (accuracy) or
  3 x the limit (perplexity);
- the chance a run that only churns answers (accuracy) or changes nothing on average (perplexity) is called
  within, and whether that reaches 80%;
- the items 80% power would take, for both, and whether the probe's data hold them.

The numbers rest on assumptions (`churn`, `ppl_doc_sd`; guard.power), stated in every line. The run ends
within budget only when every limit is within (intersection-union), so its chance is about the product of
the limits' chances (treating probes as independent). `forgetless plan`, `forgetless validate` and the
watch's notes at step 0 (guard.resolution) print these rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from forgetless.guard import power as pw
from forgetless.guard.budget import CHOICE_METRICS, GLOBAL_METRICS, PERPLEXITY_METRICS, POOLED, Budget, Limit
from forgetless.guard.procedure import EARLY_SHARE, last_over_share
from forgetless.metrics.intervals import paired_binary_delta
from forgetless.metrics.paired_tests import LogRatioTest, PairedMeanTest
from forgetless.probes.base import Comparison, ProbeResult

ACCURACY_MARGIN = 3.0  # points past an accuracy limit at which power is reported
PERPLEXITY_FACTOR = 3.0  # times a perplexity limit at which power is reported


@dataclass(frozen=True)
class PlanRow:
    """One budgeted limit on one probe (or `pooled`), judged at the run's last check. Losses are positive:
    points of accuracy lost, percent of perplexity risen."""

    limit: str  # as the budget writes it: "5pt", "arc_easy_val100:5pt", "pooled:2pt"
    probe: str  # the probe bound, or "pooled over N probes"
    unit: str  # points | percent | nats | kl
    amount: float
    items: int | None  # items scored (documents for perplexity; the sum for pooled); None: unknown yet
    available: int | None  # items the probe's data hold; None: not counted
    over_level: float  # one-sided, this limit's share of the last check's over-rate
    within_level: float  # one-sided, every limit's within level
    assumption: str  # what the numbers assume, or why the limit is not planned
    checks: int | None = None  # checks in the run (the last is the verdict); None: auto cadence
    breach: float | None = None  # smallest true loss called over with 80% power; None: none reachable
    test_loss: float | None = None  # limit + 3 pt, or 3 x the limit (%)
    test_power: float | None = None  # chance a loss of `test_loss` is called over
    within_power: float | None = None  # chance a churn-only (no-change) run is called within
    items_over: int | None = None  # items for 80% power of over at `test_loss`
    items_within: int | None = None  # items for 80% power of within (churn only)

    @property
    def planned(self) -> bool:
        return self.test_power is not None

    @property
    def within_reachable(self) -> bool:
        return self.within_power is not None and self.within_power >= pw.POWER

    @property
    def resolvable(self) -> bool:
        """Whether 80% power reaches both a breach at `test_loss` and within for an unchanged run."""
        return self.planned and self.test_power >= pw.POWER and self.within_reachable  # type: ignore[operator]

    @property
    def data_suffice(self) -> bool | None:
        """Whether the data hold the items both 80% powers need (None: unknown)."""
        need = [x for x in (self.items_over, self.items_within) if x is not None]
        return None if self.available is None or not need else self.available >= max(need)

    def to_dict(self) -> dict[str, Any]:
        extra = {"within_reachable": self.within_reachable, "data_suffice": self.data_suffice, "text": self.describe()}
        return asdict(self) | extra

    def short(self) -> str:
        """The row in a few words (`forgetless validate`); the assumption is said once for all rows."""
        head = f"{self.probe} ({self.limit.rsplit(':', 1)[-1]})"
        if not self.planned:
            return f"{head}: not planned: {self.assumption}"
        sign, things = ("%", "documents") if self.unit == "percent" else (" pt", "items")
        breach = "never" if self.breach is None else f"from {self.breach:.1f}{sign}"
        within = "yes" if self.within_reachable else "no"
        return (
            f"{head}: {self.items:,} {things}; over with 80% power {breach}; {self.test_loss:g}{sign} caught in "
            f"{self.test_power:.0%}; within reachable: {within} ({self.within_power:.0%}); 80% power needs "
            f"{_about(self.items_over)} (over) / {_about(self.items_within)} (within) {things}"
        )

    def describe(self) -> str:
        """The row in one sentence, with its assumption."""
        head = f"{self.probe} ({self.limit.rsplit(':', 1)[-1]})"
        if not self.planned:
            return f"{head}: not planned: {self.assumption}"
        ppl = self.unit == "percent"
        things, sign, what = ("documents", "%", "rise") if ppl else ("items", " pt", "loss")
        look = "the last check" if self.checks is None else f"the last of {self.checks} checks"
        if self.breach is None:
            reach = f"{look} cannot call a {what} over with 80% power"
        else:
            reach = f"{look} calls a {what} over with 80% power from {self.breach:.1f}{sign}"
        quiet = "runs with no change on average" if ppl else "churn-only runs"
        state = "reachable" if self.within_reachable else "out of reach at 80% power"
        need = f"80% power needs about {_about(self.items_over)} {things} to catch {self.test_loss:g}{sign}"
        need += f" and {_about(self.items_within)} to call within"
        if self.available is not None:
            need += f" (the data hold {'only ' if self.data_suffice is False else ''}{self.available:,})"
        return (
            f"{head}: with {self.items:,} {things} {reach}; a {what} of {self.test_loss:g}{sign} is caught in "
            f"{self.test_power:.0%} of runs; within is {state} ({self.within_power:.0%} of {quiet}); {need}; "
            f"{self.assumption}"
        )


def plan_budget(
    budget: Budget,
    probe_items: dict[str, tuple[str, int | None, int | None]],
    false_alarm: float,
    checks: int | None = None,
    churn: float = pw.CHURN,
    ppl_doc_sd: float = pw.PPL_DOC_SD,
) -> list[PlanRow]:
    """One row per budgeted limit, for general probes {name: (primary metric, items scored or None, items
    the data hold or None)} and a run whose over-rate is `false_alarm` (a stage's share, as the watch gets
    it), judged at the last of `checks` checks."""
    if not 0.0 < false_alarm < 1.0:
        raise ValueError(f"false_alarm must be strictly between 0 and 1, got {false_alarm!r}")
    pairs = _bound_pairs(budget, probe_items)
    count = len(pairs) + (1 if budget.kl_limit is not None else 0)  # the KL check takes its share too
    over, within = last_over_share(false_alarm) / max(1, count), false_alarm
    pooled = [p for p, (m, _, _) in probe_items.items() if m in GLOBAL_METRICS["points"]]
    rows = []
    for limit, probe in pairs:
        if limit.probe == POOLED:
            items = _sum([probe_items[p][1] for p in pooled])
            available = _sum([probe_items[p][2] for p in pooled])
            name = f"pooled over {len(pooled)} probes"
        else:
            _, items, available = probe_items[probe]
            name = probe
        base = PlanRow(str(limit), name, limit.unit, limit.amount, items, available, over, within, "", checks)
        rows.append(_plan(base, churn, ppl_doc_sd))
    if budget.kl_limit is not None:
        kl = budget.kl_limit
        why = "the spread of per-sequence KLs is unknown before training"
        rows.append(PlanRow(str(kl), "KL to the base", "kl", kl.amount, None, None, over, within, why, checks))
    return rows


def within_chance(rows: list[PlanRow]) -> float | None:
    """The chance a churn-only run ends within budget: every planned limit within (treated as independent)."""
    chances = [r.within_power for r in rows if r.within_power is not None]
    return math.prod(chances) if chances else None


def summary(rows: list[PlanRow], false_alarm: float) -> str:
    """The run-level line: levels of the last check and the chance an unchanged run ends within budget."""
    if not rows:
        return "no budgeted limit: nothing to plan"
    line = (
        f"the last check tests over at {_percent(rows[0].over_level)} per limit ({1 - EARLY_SHARE:.0%} of the "
        f"{_percent(false_alarm)} false-alarm rate split over {len(rows)} limits) and within at "
        f"{_percent(false_alarm)} per limit"
    )
    chance = within_chance(rows)
    if chance is not None:
        about = "under 1%" if chance < 0.01 else f"about {chance:.0%}"
        line += (
            f"; a run that only churns answers ends within budget in {about} of runs (every limit within, "
            "intersection-union: the product of the planned limits' chances)"
        )
    unplanned = sum(not r.planned for r in rows)
    return line + (f"; {unplanned} limit(s) not planned" if unplanned else "")


def _plan(row: PlanRow, churn: float, sd: float) -> PlanRow:
    if row.items is None:
        return _replace(row, assumption="the items are unknown until the data are read (`forgetless plan` reads them)")
    if row.unit == "points":
        pooled, n, over, within = row.limit.startswith(f"{POOLED}:"), row.items, row.over_level, row.within_level
        test = row.amount + ACCURACY_MARGIN
        churned = f"assuming {churn:.0%} of items flip when nothing is lost, half each way (--churn to change)"
        if test > 100.0 * (1.0 - churn):
            return _replace(
                row, assumption=f"a {row.amount:g}-point limit leaves no loss {ACCURACY_MARGIN:g} pt past it; {churned}"
            )
        # The accuracy before is unknown here; it only bounds what can be lost, so take one that allows `test`.
        base = max(0.5, churn / 2.0 + test / 100.0)
        return _replace(
            row,
            assumption=churned,
            breach=pw.smallest_breach(n, row.amount, over, churn, base=base, pooled=pooled),
            test_loss=test,
            test_power=pw.accuracy_power(n, test, row.amount, over, churn, base=base, pooled=pooled),
            within_power=pw.within_power(n, row.amount, within, churn, base=base, pooled=pooled),
            items_over=pw.items_needed(row.amount, test, over, churn),
            items_within=pw.items_needed(row.amount, 0.0, within, churn, kind="within"),
        )
    if row.unit == "percent":
        n, over, within, test = row.items, row.over_level, row.within_level, PERPLEXITY_FACTOR * row.amount
        return _replace(
            row,
            assumption=(
                f"assuming per-document changes of log perplexity spread with sd {sd:g}, unknown before "
                "training (--ppl-doc-sd to change)"
            ),
            breach=pw.perplexity_smallest_breach(n, row.amount, over, sd),
            test_loss=test,
            test_power=pw.perplexity_power(n, test, row.amount, over, sd),
            within_power=pw.perplexity_within_power(n, row.amount, within, sd),
            items_over=pw.perplexity_items_needed(row.amount, test, over, sd),
            items_within=pw.perplexity_items_needed(row.amount, 0.0, within, sd, kind="within"),
        )
    return _replace(row, assumption="the spread of per-item log-probability changes is unknown before training")


def _bound_pairs(budget: Budget, probe_items: dict[str, tuple[str, int | None, int | None]]) -> list[tuple[Limit, str]]:
    """(limit, probe) for every check `Budget.check` makes on these probes, in its order."""
    comparisons = []
    for name, (metric, items, _) in probe_items.items():
        n = max(2, items or 2)  # only which limits apply matters here, not the numbers
        result = ProbeResult(name, "probe", "general", metric, {}, n, 0.0)
        if metric in PERPLEXITY_METRICS:
            test = LogRatioTest(0.0, 0.1, n, 10.0).to_dict()
            comparisons.append(
                Comparison(name, "general", metric, False, 10.0, 10.0, 0.0, 0.0, None, None, None, n, "info", "", test)
            )
        elif metric in GLOBAL_METRICS["points"] | {"expect_rate"}:
            comparisons.append(Comparison.paired(result, metric, True, paired_binary_delta(0.5, 0, 0, n)))
        else:
            continue  # a metric no budget unit bounds
        if metric in CHOICE_METRICS:
            test = PairedMeanTest(0.0, 1.0, n).to_dict()
            comparisons.append(
                Comparison(
                    name, "general", "gold_logprob", True, -1.0, -1.0, 0.0, 0.0, None, None, None, n, "info", "", test
                )
            )
    pairs = []
    for check in budget.check(comparisons, 0.05, 0.05):
        pairs.append((_limit(budget, check.probe, check.unit), check.probe))
    return pairs


def _limit(budget: Budget, probe: str, unit: str) -> Limit:
    named = [x for x in budget.limits if x.probe == probe and x.unit == unit]
    return (named or [x for x in budget.limits if x.probe is None and x.unit == unit])[-1]


def _replace(row: PlanRow, **changes: Any) -> PlanRow:
    return PlanRow(**(asdict(row) | changes))


def _sum(values: list[int | None]) -> int | None:
    return None if not values or any(v is None for v in values) else sum(values)  # type: ignore[arg-type]


def _percent(x: float) -> str:
    return f"{100 * x:.3g}%"


def _about(n: int | None) -> str:
    """Items to two significant digits, rounded up: 1,095 -> '1,100'."""
    if n is None:
        return "no number of"
    step = 10 ** max(0, len(str(n)) - 2)
    return f"{math.ceil(n / step) * step:,}"
