"""A forgetting budget: how much general capability the user accepts to lose, probe by probe.

A budget is a list of limits, each written `[probe:]AMOUNT UNIT`:

- `2pt` (points): an accuracy may drop by at most 2 percentage points (0.63 -> 0.61 is 2 points).
- `5%` (percent): a perplexity may rise by at most 5% of its value before tuning.

A limit without a probe name applies to every general probe whose primary metric has its unit
(canaries' expect_rate only when named: a few prompts cannot resolve a few points); a named limit
overrides it for that probe. So `2pt,5%,lambada:10%` allows 2 points on every
accuracy probe, 5% on every perplexity probe except LAMBADA, which may rise 10%.

A probe is over budget only when its estimated change is past the limit *and* the change is beyond
its noise band: the 95% interval of the paired delta excludes zero (the audit's "forgot" verdict).
On 100 items an accuracy interval is about +-10 points wide, so a 3-point estimate that the
interval cannot tell from zero does not stop a run; the check reports it as "noise" instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.evaluation.results import BudgetCheck
from forgetless.probes import Comparison

UNITS = {"pt": "points", "pts": "points", "point": "points", "points": "points", "%": "percent", "percent": "percent"}
# The metric families each unit can bound: accuracies move in points, perplexities in percent.
ACCURACY_METRICS = {"acc", "acc_norm", "acc_bytes", "expect_rate"}
PERPLEXITY_METRICS = {"perplexity"}
UNIT_METRICS = {"points": ACCURACY_METRICS, "percent": PERPLEXITY_METRICS}
# What an unnamed limit bounds. Not a canary's expect_rate: a handful of prompts, so one changed
# answer moves it by 1/n (14 points of 7) and a global `2pt` would be decided by single prompts.
# Name the probe to budget it (`canaries:30pt`).
GLOBAL_METRICS = {"points": ACCURACY_METRICS - {"expect_rate"}, "percent": PERPLEXITY_METRICS}
_LIMIT = re.compile(r"^(?:(?P<probe>[A-Za-z0-9_.-]+)\s*:)?\s*(?P<amount>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[A-Za-z%]*)$")


@dataclass(frozen=True)
class Limit:
    probe: str | None  # None: every general probe measured in this unit
    amount: float
    unit: str  # "points" | "percent"

    def __str__(self) -> str:
        amount = f"{self.amount:g}{'pt' if self.unit == 'points' else '%'}"
        return amount if self.probe is None else f"{self.probe}:{amount}"


def parse_limit(text: str) -> Limit:
    match = _LIMIT.match(text.strip())
    unit = UNITS.get(match.group("unit").lower()) if match else None
    if match is None or unit is None:
        raise ForgetlessError(
            f"budget limit '{text.strip()}' is not [probe:]AMOUNT UNIT with unit pt (accuracy points) or % "
            "(perplexity increase)",
            "write e.g. '2pt' (every accuracy may drop 2 points), '5%' (every perplexity may rise 5%) or 'lambada:10%'",
        )
    return Limit(match.group("probe"), float(match.group("amount")), unit)


class Budget:
    """The limits of a run; `check` compares before/after comparisons against them."""

    def __init__(self, limits: Iterable[Limit]) -> None:
        self.limits = list(limits)

    @classmethod
    def parse(cls, spec: str | list[str] | None) -> Budget:
        """From '2pt,lambada:5%' or a list of such strings; None or '' is an empty budget."""
        if not spec:
            return cls([])
        parts = spec if isinstance(spec, list) else str(spec).split(",")
        limits = [parse_limit(str(p)) for p in parts if str(p).strip()]
        # Two limits on one probe (or two unnamed ones of one unit): the last would win without a word.
        seen: dict[tuple[str | None, str | None], Limit] = {}
        for limit in limits:
            key = (limit.probe, None if limit.probe else limit.unit)
            if key in seen:
                what = f"probe '{limit.probe}'" if limit.probe else f"every probe measured in {limit.unit}"
                raise ForgetlessError(
                    f"budget '{','.join(map(str, limits))}' limits {what} twice: '{seen[key]}' and '{limit}'",
                    "keep one of the two limits",
                )
            seen[key] = limit
        return cls(limits)

    def __bool__(self) -> bool:
        return bool(self.limits)

    def __str__(self) -> str:
        return ",".join(map(str, self.limits))

    def problems(self, probe_metrics: dict[str, str], targets: Iterable[str] = ()) -> list[str]:
        """What is wrong with this budget for probes {name: primary metric}: unknown probes, wrong units."""
        out, targets = [], set(targets)
        for limit in self.limits:
            if limit.probe is None:
                continue
            if limit.probe in targets:
                out.append(
                    f"budget '{limit}': '{limit.probe}' is the target (what tuning should change), not a "
                    "general probe; budgets bound general probes"
                )
            elif limit.probe not in probe_metrics:
                known = ", ".join(sorted(probe_metrics)) or "none"
                out.append(f"budget '{limit}': no watched probe is named '{limit.probe}' (probes: {known})")
            elif probe_metrics[limit.probe] not in UNIT_METRICS[limit.unit]:
                metric = probe_metrics[limit.probe]
                right = "pt (accuracy points)" if metric in ACCURACY_METRICS else "% (perplexity increase)"
                out.append(
                    f"budget '{limit}': '{limit.probe}' is measured by {metric}, which a limit in "
                    f"{limit.unit} cannot bound; use {right}"
                )
        return out

    def limit_for(self, probe: str, metric: str) -> Limit | None:
        named = [x for x in self.limits if x.probe == probe]
        if named:
            return named[-1]
        general = [x for x in self.limits if x.probe is None and metric in GLOBAL_METRICS[x.unit]]
        return general[-1] if general else None

    def check(self, comparisons: list[Comparison]) -> list[BudgetCheck]:
        """Each general probe's primary comparison against its limit (probes without one are skipped)."""
        primary: dict[str, Comparison] = {}
        for c in comparisons:
            primary.setdefault(c.probe, c)
        out = []
        for c in primary.values():
            limit = self.limit_for(c.probe, c.metric) if c.role == "general" else None
            if limit is None:
                continue
            if limit.unit == "points":
                change = -100 * c.delta if c.higher_is_better else 100 * c.delta
            else:
                change = 100 * (c.relative if c.relative is not None else c.after / c.before - 1)
            status = "within" if change <= limit.amount else "over" if c.verdict == "forgot" else "noise"
            out.append(BudgetCheck(c.probe, c.metric, change, limit.amount, limit.unit, status))
        return out


def probe_metrics(probes: Iterable[Any]) -> dict[str, str]:
    """{probe name: its primary metric}, known from the configs before anything is scored."""
    out = {}
    for probe in probes:
        config = probe.config
        if config.role != "general":
            continue
        if config.kind == "canary":  # scored only when it lists expected substrings
            inline = any(getattr(p, "expect", None) for p in getattr(config, "prompts", []))
            out[config.name] = "expect_rate" if inline or getattr(config, "expect", None) else "generations"
        else:
            out[config.name] = getattr(config, "primary", None) or config.kind
    return out


def over_budget(checks: list[BudgetCheck]) -> list[BudgetCheck]:
    return [c for c in checks if c.status == "over"]
