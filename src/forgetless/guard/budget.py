"""A forgetting budget: how much general capability the user accepts to lose, probe by probe.

A budget is a list of limits, each written `[probe:]AMOUNT UNIT`:

- `2pt` (points): an accuracy may drop by at most 2 percentage points (0.63 -> 0.61 is 2 points).
- `5%` (percent): a perplexity may rise by at most 5% of its value before tuning.
- `0.05nats`: a multiple-choice probe's gold answer may lose at most 0.05 nats of log-probability
  (normalized over its choices) on average: a per-item measure that sees a change long before
  enough answers flip to move the accuracy.
- `kl:0.05`: the mean KL divergence from the base model's next-token distributions to the tuned
  model's, on held-out inputs of the new task, may reach at most 0.05 nats (guard.kl_signal): a limit
  for users without general data. It has no pairing (the base's KL is 0 by definition): it is judged
  on the one-sample t interval of the per-sequence KLs, a random sample of the task's inputs.

A limit without a probe name applies to every general probe measured in its unit (canaries'
expect_rate only when named: a few prompts cannot resolve a few points); a named limit overrides
the unnamed one of its unit for that probe. So `2pt,5%,lambada:10%` allows 2 points on every
accuracy probe, 5% on every perplexity probe except LAMBADA, which may rise 10%. A probe can be
bound in two units (`2pt,0.05nats`); it is over when either check is over.

Verdicts test the limit, not "no change": a check is `over` only when the interval of the loss
lies wholly past the limit, `within` only when it lies wholly inside, and `inconclusive` otherwise
(with an estimate of the items that would decide it). The interval and the p-values come from one
test (`metrics.paired_tests`). A look judges `over` at its share `alpha` of the false-alarm rate,
split equally over its K checks (Bonferroni: each one-sided at alpha / K), and `within` at `within`
for every check (an intersection-union test needs no split); guard.procedure says how a run spends
its rate over its looks, so the rate holds for a whole run. `pooled:2pt` bounds one more measure: the
accuracy of every general accuracy probe's items together, one paired test on the summed counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.evaluation.results import BudgetCheck
from forgetless.guard.verdict import judge, tolerance
from forgetless.metrics.intervals import paired_binary_delta
from forgetless.probes import Comparison, ProbeResult
from forgetless.suites.renamed import renamed_hint, renamed_to

UNITS = {
    "pt": "points",
    "pts": "points",
    "point": "points",
    "points": "points",
    "%": "percent",
    "percent": "percent",
    "nat": "nats",
    "nats": "nats",
}
# The metric families each unit can bound: accuracies move in points, perplexities in percent.
# exact_match, word_perplexity and byte_perplexity are lm-eval's (audit --lm-eval-samples).
ACCURACY_METRICS = {"acc", "acc_norm", "acc_bytes", "expect_rate", "exact_match"}
PERPLEXITY_METRICS = {"perplexity", "word_perplexity", "byte_perplexity"}
LOGPROB_METRICS = {"gold_logprob"}
UNIT_METRICS = {"points": ACCURACY_METRICS, "percent": PERPLEXITY_METRICS, "nats": LOGPROB_METRICS, "kl": {"kl"}}
UNIT_TEXT = {"points": "pt", "percent": "%", "nats": "nats", "kl": ""}
POOLED = "pooled"  # `pooled:AMOUNT pt`: the accuracy of every general accuracy probe's items together
KL = "kl"  # `kl:AMOUNT`: a limit on the KL signal (guard.kl_signal), not on a probe
# Choice probes' primary metrics: the probes that also report gold_logprob (a nats limit's measure).
CHOICE_METRICS = {"acc", "acc_norm", "acc_bytes"}
# What an unnamed limit bounds. Not a canary's expect_rate: a handful of prompts, so one changed
# answer moves it by 1/n (14 points of 7) and a global `2pt` would be decided by single prompts.
# Name the probe to budget it (`canaries:30pt`).
GLOBAL_METRICS = {"points": ACCURACY_METRICS - {"expect_rate"}, "percent": PERPLEXITY_METRICS, "nats": LOGPROB_METRICS}
DEFAULT_ALPHA = 0.05
_LIMIT = re.compile(r"^(?:(?P<probe>[A-Za-z0-9_.-]+)\s*:)?\s*(?P<amount>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[A-Za-z%]*)$")


@dataclass(frozen=True)
class Limit:
    probe: str | None  # None: every general probe measured in this unit
    amount: float
    unit: str  # "points" | "percent" | "nats" | "kl"

    def __str__(self) -> str:
        amount = f"{self.amount:g}{UNIT_TEXT[self.unit]}"
        return amount if self.probe is None else f"{self.probe}:{amount}"


def parse_limit(text: str) -> Limit:
    match = _LIMIT.match(text.strip())
    if match and match.group("probe") == KL and match.group("unit").lower() in ("", "nat", "nats"):
        return Limit(KL, float(match.group("amount")), "kl")
    unit = UNITS.get(match.group("unit").lower()) if match else None
    if match is None or unit is None:
        raise ForgetlessError(
            f"budget limit '{text.strip()}' is not [probe:]AMOUNT UNIT with unit pt (accuracy points), % "
            "(perplexity increase) or nats (gold answer log-probability), or kl:AMOUNT (KL to the base, nats)",
            "write e.g. '2pt' (every accuracy may drop 2 points), '5%' (every perplexity may rise 5%), 'lambada:10%' "
            "or 'kl:0.05'",
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
            key = (limit.probe, limit.unit)
            if key in seen:
                what = f"probe '{limit.probe}'" if limit.probe else f"every probe measured in {limit.unit}"
                raise ForgetlessError(
                    f"budget '{','.join(map(str, limits))}' limits {what} twice: '{seen[key]}' and '{limit}'",
                    "keep one of the two limits",
                )
            seen[key] = limit
        return cls(limits)

    @property
    def kl_limit(self) -> Limit | None:
        """The limit on the KL signal (`kl:0.05`), if the budget has one."""
        return next((x for x in self.limits if x.unit == "kl"), None)

    def __bool__(self) -> bool:
        return bool(self.limits)

    def __str__(self) -> str:
        return ",".join(map(str, self.limits))

    def problems(self, probe_metrics: dict[str, str], targets: Iterable[str] = ()) -> list[str]:
        """What is wrong with this budget for probes {name: primary metric}: unknown probes, wrong units."""
        out, targets = [], set(targets)
        for limit in self.limits:
            if limit.probe is None or limit.unit == "kl":  # a KL limit needs the KL signal, not a probe
                continue
            if limit.probe == POOLED:  # the accuracy of every general accuracy probe's items together
                if limit.unit != "points":
                    out.append(f"budget '{limit}': the pooled measure is an accuracy; bound it in pt ('pooled:2pt')")
                elif not any(m in GLOBAL_METRICS["points"] for m in probe_metrics.values()):
                    out.append(f"budget '{limit}': no watched general probe is measured by an accuracy to pool")
                continue
            if limit.probe in targets:
                out.append(
                    f"budget '{limit}': '{limit.probe}' is the target (what tuning should change), not a "
                    "general probe; budgets bound general probes"
                )
            elif limit.probe not in probe_metrics:
                # A built-in probe's old name (issue 15) gets its new name and why, not just "unknown".
                hint, new = renamed_hint(limit.probe, probe_metrics), renamed_to(limit.probe, probe_metrics)
                if new is not None:
                    out.append(f"budget '{limit}': {hint}; write '{Limit(new, limit.amount, limit.unit)}'")
                    continue
                known = ", ".join(sorted(probe_metrics)) or "none"
                note = f"; {hint}" if hint else ""
                out.append(f"budget '{limit}': no watched probe is named '{limit.probe}' (probes: {known}){note}")
            elif limit.unit == "nats" and probe_metrics[limit.probe] not in CHOICE_METRICS:
                out.append(
                    f"budget '{limit}': '{limit.probe}' is measured by {probe_metrics[limit.probe]} and has no "
                    "gold answer log-probability; nats bound multiple-choice probes only"
                )
            elif limit.unit != "nats" and probe_metrics[limit.probe] not in UNIT_METRICS[limit.unit]:
                metric = probe_metrics[limit.probe]
                right = "pt (accuracy points)" if metric in ACCURACY_METRICS else "% (perplexity increase)"
                out.append(
                    f"budget '{limit}': '{limit.probe}' is measured by {metric}, which a limit in "
                    f"{limit.unit} cannot bound; use {right}"
                )
        return out

    def limit_for(self, probe: str, metric: str) -> Limit | None:
        """A limit bounding this probe whose primary metric is `metric`: named first, else an unnamed one."""
        named = [x for x in self.limits if x.probe == probe]
        if named:
            return named[-1]
        for unit in ("points", "percent", "nats"):
            bounds = metric in CHOICE_METRICS if unit == "nats" else metric in GLOBAL_METRICS[unit]
            general = [x for x in self.limits if x.probe is None and x.unit == unit]
            if bounds and general:
                return general[-1]
        return None

    def _limits(self, probe: str, units: list[str]) -> list[Limit]:
        out = []
        for unit in units:
            named = [x for x in self.limits if x.probe == probe and x.unit == unit]
            if named:
                out.append(named[-1])
                continue
            general = [x for x in self.limits if x.probe is None and x.unit == unit]
            out.extend(general[-1:])
        return out

    def check(
        self, comparisons: list[Comparison], alpha: float = DEFAULT_ALPHA, within: float | None = None
    ) -> list[BudgetCheck]:
        """Each general probe against its limits: `over` at this look's share `alpha` of the false-alarm
        rate, split equally over the checks (Bonferroni); `within` at `within` for every check (default
        `alpha`: an intersection-union test needs no split, see guard.procedure).

        Points and percent bound a probe's primary comparison, nats its `gold_logprob` comparison, and a
        `pooled:` limit one paired test over the items of every general accuracy probe together.
        """
        within = alpha if within is None else within
        for name, level in (("alpha", alpha), ("within", within)):
            if not 0.0 < level < 1.0:
                raise ValueError(f"{name} must be strictly between 0 and 1, got {level!r}")
        by_probe: dict[str, list[Comparison]] = {}
        for c in comparisons:
            by_probe.setdefault(c.probe, []).append(c)
        pairs: list[tuple[Limit, Comparison]] = []
        for probe, found in by_probe.items():
            if found[0].role != "general":
                continue
            for limit in self._limits(probe, ["points", "percent", "nats", "kl"]):
                bound = _bound(limit, found)
                if bound is not None:
                    pairs.append((limit, bound))
        pooled_limit = self.pooled_limit
        if pooled_limit is not None:
            pooled = pooled_accuracy(comparisons)
            if pooled is not None:
                pairs.append((pooled_limit, pooled))
        share = alpha / max(1, len(pairs))
        return [judge(c, limit, share, within) for limit, c in pairs]

    @property
    def pooled_limit(self) -> Limit | None:
        """The limit on the pooled accuracy of every general accuracy probe (`pooled:2pt`), if any."""
        return next((x for x in self.limits if x.probe == POOLED), None)


def pooled_accuracy(comparisons: list[Comparison]) -> Comparison | None:
    """One paired comparison over the items of every general probe whose primary metric is an accuracy
    (each item weighs the same): the sums of items lost, gained and scored make one Tango test. None
    when no such probe carries a paired 0/1 test."""
    primary: dict[str, Comparison] = {}
    for c in comparisons:
        primary.setdefault(c.probe, c)
    parts = [
        c
        for c in primary.values()
        if c.role == "general"
        and c.metric in GLOBAL_METRICS["points"]
        and (c.test or {}).get("kind") == "paired_binary"
    ]
    if not parts:
        return None
    lost = sum(int(c.test["lost"]) for c in parts)  # type: ignore[index]
    gained = sum(int(c.test["gained"]) for c in parts)  # type: ignore[index]
    n = sum(int(c.test["n"]) for c in parts)  # type: ignore[index]
    before = sum(c.before * c.n for c in parts) / n
    d = paired_binary_delta(before, lost, gained, n)
    names = ", ".join(c.probe for c in parts)
    result = ProbeResult(POOLED, "pooled", "general", "acc", {}, n, 0.0)
    return Comparison.paired(result, "acc", True, d, note=f"pooled over {len(parts)} probes: {names}")


def _bound(limit: Limit, found: list[Comparison]) -> Comparison | None:
    """The comparison `limit` bounds among one probe's comparisons (primary first), or None."""
    primary = found[0]
    if limit.unit == "kl":
        return next((c for c in found if c.metric == KL), None)
    if limit.unit == "nats":
        bound = next((c for c in found if c.metric in LOGPROB_METRICS), None)
        if bound is None and limit.probe is not None:  # named, so `problems` let it through: a kind without it
            raise ForgetlessError(
                f"budget '{limit}': probe '{limit.probe}' reports no gold_logprob",
                "bound it in points instead (nats bound multiple-choice probes)",
            )
        return bound
    applies = limit.probe is not None or primary.metric in GLOBAL_METRICS[limit.unit]
    return primary if applies and primary.metric in UNIT_METRICS[limit.unit] else None


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


def estimates_within(checks: list[BudgetCheck]) -> bool:
    """Every estimated loss inside its limit (a rollback point must be more than not-proven-over)."""
    return all(c.change <= c.limit + tolerance(c.limit) for c in checks)
