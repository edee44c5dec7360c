"""Sequential checks: score a watch check's items in parts, and stop once every budgeted probe is within.

Early in a fine-tune most checks end `within` long before every item is scored. A sequential check
scores a random part of each probe's items (the same part of the baseline's items), judges the
budget on it and stops if every budgeted probe is already `within`; otherwise it scores the next
part, up to all of them. Only the full look may call a probe `over`: stopping early can only remove
alarms, so the run's false-alarm rate (guard.watch) is the same as with full checks. Each look may say
`within` only at its share of the check's within level (a tenth to each part, the rest, 80%, to the full
set: Bonferroni), so the chance that a loss at its limit is called within at some look is at most that
level. A check whose verdict stays open costs one full check plus the comparisons of the parts (milliseconds).

Parts are nested random samples (a permutation seeded by the probe's `seed`), so each look's
interval is a paired interval on a random sample of the probe's items. Probe kinds that cannot score
part of their items (`Probe.subset` returns None) are scored whole at the first look.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from forgetless.evaluation.results import BudgetCheck
from forgetless.guard.budget import Budget
from forgetless.probes import Comparison, Probe, ProbeResult, take_items

PARTS = (0.25, 0.5)  # the item shares after which a check may stop; the full set is always the last look
PART_WITHIN = 0.1  # the share of a check's within level each part look spends; the full set keeps the rest


class Part(Probe):
    """The items of `probe` at `indices`, as a probe of its own (its results cache under their own key)."""

    def __init__(self, probe: Probe, prepared: Any, indices: list[int]) -> None:
        super().__init__(probe.config, probe.base_dir)
        self.probe, self.indices = probe, indices
        self.prepared = probe.subset(prepared, indices)

    def prepare(self, tokenizer: Any) -> Any:
        return self.prepared

    def score(self, lm: Any, prepared: Any, options: Any) -> ProbeResult:
        return self.probe.score(lm, prepared, options)


@dataclass
class SequentialCheck:
    current: dict[str, Any]  # {"probes": [result dicts]}: the items scored, merged per probe
    comparisons: list[Comparison]
    checks: list[BudgetCheck]
    share: float  # the share of the items scored (1.0: a full check)
    looks: int


class SequentialScorer:
    """Prepares every watched probe once, then runs sequential checks of weights as training goes."""

    def __init__(self, probes: list[Probe], tokenizer: Any, baseline: dict[str, Any], parts: tuple[float, ...] = PARTS):
        self.probes, self.parts = probes, parts
        self._full_within = 1.0 - PART_WITHIN * len(parts)  # the full look keeps most of the check's within level
        self.prepared = [p.prepare(tokenizer) for p in probes]
        self.baseline = {r["name"]: ProbeResult.from_dict(_strip(r)) for r in baseline["probes"]}
        self.order = [self._order(p, prep) for p, prep in zip(probes, self.prepared, strict=True)]

    def _order(self, probe: Probe, prepared: Any) -> list[int] | None:
        """A seeded random order of the probe's items, or None when it is scored whole."""
        n = self.baseline[probe.config.name].n_items
        if type(probe).subset is Probe.subset or n < 2 * (len(self.parts) + 1):
            return None
        return np.random.default_rng(probe.config.seed).permutation(n).tolist()

    def check(
        self,
        score: Callable[[Probe], ProbeResult],
        budget: Budget,
        alpha: float,
        extra: list[Comparison] = (),
        within: float | None = None,
    ) -> SequentialCheck:
        """Look after each part (`within` only) and at the full set (`over` at `alpha`). The check's
        `within` level (default `alpha`) is split over its looks (a tenth to each part, the rest to the full
        set), so a loss at its limit is called within at some look no more often than one full look allows.

        `extra`: comparisons measured apart from the items (the KL signal), judged at every look with the rest."""
        within = alpha if within is None else within
        scored: list[list[ProbeResult]] = [[] for _ in self.probes]
        shares = [*self.parts, 1.0]
        for look, share in enumerate(shares, start=1):
            for i, probe in enumerate(self.probes):
                if self.order[i] is None:
                    if not scored[i]:  # scored whole, at the first look
                        scored[i].append(score(probe))
                    continue
                scored[i].append(score(Part(probe, self.prepared[i], self._new_indices(i, look))))
            full = share >= 1.0
            results, comparisons = self._compare(scored)
            comparisons += extra
            checks = budget.check(comparisons, alpha, within * (PART_WITHIN if not full else self._full_within))
            if full or (checks and all(c.status == "within" for c in checks)):
                current = {"probes": [r.to_dict() for r in results]}
                return SequentialCheck(current, comparisons, checks, share, look)
        raise AssertionError("the last look is the full set")

    def _new_indices(self, i: int, look: int) -> list[int]:
        """The items look number `look` (from 1) adds to probe i's: the next slice of its random order."""
        order = self.order[i] or []
        shares = [0.0, *self.parts, 1.0]
        return order[_count(len(order), shares[look - 1]) : _count(len(order), shares[look])]

    def _compare(self, scored: list[list[ProbeResult]]) -> tuple[list[ProbeResult], list[Comparison]]:
        results, comparisons = [], []
        for i, probe in enumerate(self.probes):
            before = self.baseline[probe.config.name]
            if self.order[i] is None:
                after = scored[i][0]
            else:
                indices = self.order[i][: sum(r.n_items for r in scored[i])]
                after = _merge(probe, scored[i])
                before = probe.from_items(take_items(before.items, indices), before.seconds)
            results.append(after)
            comparisons.extend(probe.compare(before, after))
        return results, comparisons


def _count(n: int, share: float) -> int:
    return n if share >= 1.0 else math.ceil(share * n)


def _merge(probe: Probe, parts: list[ProbeResult]) -> ProbeResult:
    if len(parts) == 1:
        return parts[0]
    items = {key: [v for part in parts for v in part.items[key]] for key in parts[0].items}
    return probe.from_items(items, sum(p.seconds for p in parts))


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "cached"}
