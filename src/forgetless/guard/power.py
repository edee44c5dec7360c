"""What one budgeted limit can decide with n items: the power of the guard's own verdicts on synthetic changes.

Every verdict here is the guard's: a synthetic comparison is judged by `Budget.check` (guard.verdict) at the
levels given, so a plan cannot disagree with the checks it plans for.

- Accuracy (a points limit, or `pooled:` over several probes' items: one Tango test on the summed counts, so
  the same as one probe of all their items). When nothing is lost, a share `churn` of the n items flips,
  half right -> wrong and half wrong -> right; a true loss of L points adds L / 100 of right -> wrong flips.
  The counts (lost, gained) are drawn from the multinomial over {lost, gained, unchanged} as lost ~
  Binomial(n, p_lost), then gained ~ Binomial(n - lost, p_gained / (1 - p_lost)), by the inverse cdf of
  fixed uniforms (`seed`): draws are coupled across true losses, so the Monte Carlo power rises with the
  loss and `smallest_breach` bisects on it. Each distinct (lost, gained) is judged once.
- Perplexity (a percent limit). The change of log perplexity over n documents is taken as normal around
  log(1 + rise) with standard error `ppl_doc_sd / sqrt(n)`, `ppl_doc_sd` the spread over documents of the
  per-document change of log perplexity (about its relative change): unknown before training, so an
  assumption (0.20 by default, measured on a real run). The critical log ratio is found by bisection on
  the guard's verdict of a `LogRatioTest`; the power is the normal chance of passing it.
- Items needed: the normal approximation of the score test's sample size, n = ((z_a sd_0 + z_b sd_1) /
  gap)^2, with sd_1 the per-item spread under the truth and sd_0 under Tango's restricted estimate at the
  limit (accuracy), or sd_0 = sd_1 = ppl_doc_sd (perplexity, then raised until the t test reaches `power`).
  tests/guard/test_power.py holds it to the Monte Carlo within 10%.

Sign convention: a loss is positive (accuracy points lost, perplexity percent risen); limits likewise.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special, stats

from forgetless.guard.budget import POOLED, Budget, Limit
from forgetless.metrics.intervals import paired_binary_delta
from forgetless.metrics.paired_tests import LogRatioTest
from forgetless.probes.base import Comparison, ProbeResult

CHURN = 0.10  # share of items that flip when nothing is lost (half each way): an assumption, stated in every plan
# sd over documents of the change of log perplexity: an assumption, stated in every plan. 0.2 from a real run:
# examples/sst2-guard.yaml's LAMBADA check at step 30 had a 95% interval of +-3.5% on 100 documents, a
# standard error of 1.8% of the log ratio, so about 0.18 per document.
PPL_DOC_SD = 0.20
POWER = 0.80
DRAWS = 2000
_PROBE = "probe"  # the synthetic probe's name


# -- accuracy ------------------------------------------------------------------------------------------


def accuracy_power(
    n: int,
    true_loss_pt: float,
    limit_pt: float,
    over_level: float,
    churn: float = CHURN,
    base: float = 0.5,
    draws: int = DRAWS,
    seed: int = 0,
    pooled: bool = False,
) -> float:
    """The chance the check calls `over` a points limit `limit_pt` on n items that truly lost `true_loss_pt`
    points, at one-sided level `over_level` (Monte Carlo, `draws` runs). `base` (the accuracy before) only
    bounds what can be lost: p_lost = churn / 2 + loss / 100 must not pass it."""
    return _share(n, true_loss_pt, limit_pt, over_level, over_level, churn, base, draws, seed, pooled, "over")


def within_power(
    n: int,
    limit_pt: float,
    within_level: float,
    churn: float = CHURN,
    base: float = 0.5,
    draws: int = DRAWS,
    seed: int = 0,
    pooled: bool = False,
    true_loss_pt: float = 0.0,
) -> float:
    """The chance the check calls `within` a points limit at one-sided level `within_level` when the items
    only churn (true loss `true_loss_pt`, 0 by default). Over and within exclude each other, so the over
    level does not enter."""
    return _share(n, true_loss_pt, limit_pt, within_level, within_level, churn, base, draws, seed, pooled, "within")


def smallest_breach(
    n: int,
    limit_pt: float,
    over_level: float,
    churn: float = CHURN,
    power: float = POWER,
    base: float = 0.5,
    draws: int = DRAWS,
    seed: int = 0,
    pooled: bool = False,
) -> float | None:
    """The smallest true loss (points, to 0.05) called over with at least `power`: bisection on the coupled
    Monte Carlo power. None when no loss the items can lose (base - churn / 2) reaches it."""
    lo, hi = limit_pt, 100.0 * (base - churn / 2.0)
    if hi <= lo or accuracy_power(n, hi, limit_pt, over_level, churn, base, draws, seed, pooled) < power:
        return None
    while hi - lo > 0.05:
        mid = (lo + hi) / 2.0
        if accuracy_power(n, mid, limit_pt, over_level, churn, base, draws, seed, pooled) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def items_needed(
    limit_pt: float,
    true_loss_pt: float,
    level: float,
    churn: float = CHURN,
    power: float = POWER,
    kind: str = "over",
) -> int | None:
    """Items for `power` at one-sided `level` (normal approximation of Tango's score test, see module):
    `over` a limit below the true loss, or `within` a limit above it. None when the question has no answer
    (over with a true loss at or under the limit, within with one at or over it)."""
    if kind not in ("over", "within"):
        raise ValueError(f"kind must be 'over' or 'within', got {kind!r}")
    gap = (true_loss_pt - limit_pt) / 100.0 if kind == "over" else (limit_pt - true_loss_pt) / 100.0
    if gap <= 0.0:
        return None
    p_lost, p_gained = _rates(true_loss_pt, churn, None)
    sd_1 = math.sqrt(p_lost + p_gained - (p_gained - p_lost) ** 2)
    null = -limit_pt / 100.0
    # Tango's restricted estimate of P(lost) at the null, from the expected shares (his quadratic over n).
    b = -p_gained - p_lost + (2.0 - p_gained + p_lost) * null
    c = -p_lost * null * (1.0 - null)
    restricted = (math.sqrt(max(b * b - 8.0 * c, 0.0)) - b) / 4.0
    sd_0 = math.sqrt(max(2.0 * restricted + null * (1.0 - null), 0.0))
    z_a, z_b = float(special.ndtri(1.0 - level)), float(special.ndtri(power))
    return max(2, math.ceil(((z_a * sd_0 + z_b * sd_1) / gap) ** 2))


def _rates(loss_pt: float, churn: float, base: float | None) -> tuple[float, float]:
    """(P(lost), P(gained)) per item; with `base`, checked against what an accuracy of `base` can lose."""
    if not 0.0 <= churn < 1.0:
        raise ValueError(f"churn must be in [0, 1), got {churn!r}")
    p_lost, p_gained = churn / 2.0 + loss_pt / 100.0, churn / 2.0
    base = min(max(p_lost, 0.5), 1.0 - p_gained) if base is None else base
    if p_lost < 0.0 or p_lost > base + 1e-12 or p_gained > 1.0 - base + 1e-12:
        raise ValueError(
            f"a loss of {loss_pt:g} pt with churn {churn:g} flips {p_lost:.0%} of items right -> wrong and "
            f"{p_gained:.0%} wrong -> right, impossible from an accuracy of {base:.0%}"
        )
    return p_lost, p_gained


def _share(
    n: int,
    loss: float,
    limit: float,
    over: float,
    within: float,
    churn: float,
    base: float,
    draws: int,
    seed: int,
    pooled: bool,
    status: str,
) -> float:
    """The share of `draws` coupled runs the guard gives `status`."""
    if n < 2:
        raise ValueError(f"n must be at least 2 items, got {n!r}")
    p_lost, p_gained = _rates(loss, churn, base)
    u = np.random.default_rng(seed).random((2, draws))
    lost = np.maximum(stats.binom.ppf(u[0], n, p_lost), 0).astype(int)
    share = p_gained / (1.0 - p_lost) if p_lost < 1.0 else 0.0
    gained = np.maximum(stats.binom.ppf(u[1], n - lost, share), 0).astype(int)
    pairs, counts = np.unique(np.stack([lost, gained], axis=1), axis=0, return_counts=True)
    limit_ = Limit(POOLED if pooled else _PROBE, float(limit), "points")
    hits = sum(
        int(k)
        for (x, y), k in zip(pairs, counts, strict=True)
        if _accuracy(n, int(x), int(y), limit_, over, within) == status
    )
    return hits / draws


@lru_cache(maxsize=100_000)
def _accuracy(n: int, lost: int, gained: int, limit: Limit, over: float, within: float) -> str:
    """The guard's verdict on n items of which `lost` went right -> wrong and `gained` wrong -> right. The
    accuracy before does not enter a points verdict (only the counts do); 0.5 keeps `after` in [0, 1]."""
    result = ProbeResult(_PROBE, "choice", "general", "acc", {}, n, 0.0)
    comparison = Comparison.paired(result, "acc", True, paired_binary_delta(0.5, lost, gained, n))
    (check,) = Budget([limit]).check([comparison], over, within)
    return check.status


# -- perplexity ----------------------------------------------------------------------------------------


def perplexity_power(
    n: int, true_rise_pct: float, limit_pct: float, over_level: float, ppl_doc_sd: float = PPL_DOC_SD
) -> float:
    """The chance the check calls a perplexity rise of `true_rise_pct` over a `limit_pct` limit with n
    documents (normal approximation, see module)."""
    se = _se(n, ppl_doc_sd)
    return float(
        special.ndtr((math.log1p(true_rise_pct / 100.0) - _critical(n, se, limit_pct, over_level, "over")) / se)
    )


def perplexity_within_power(
    n: int, limit_pct: float, within_level: float, ppl_doc_sd: float = PPL_DOC_SD, true_rise_pct: float = 0.0
) -> float:
    """The chance the check calls within a `limit_pct` limit when perplexity truly rises `true_rise_pct` (0)."""
    se = _se(n, ppl_doc_sd)
    critical = _critical(n, se, limit_pct, within_level, "within")
    return float(special.ndtr((critical - math.log1p(true_rise_pct / 100.0)) / se))


def perplexity_smallest_breach(
    n: int, limit_pct: float, over_level: float, ppl_doc_sd: float = PPL_DOC_SD, power: float = POWER
) -> float:
    """The smallest true rise (percent) called over with `power`: the critical log ratio plus z_power
    standard errors."""
    se = _se(n, ppl_doc_sd)
    return 100.0 * math.expm1(_critical(n, se, limit_pct, over_level, "over") + float(special.ndtri(power)) * se)


def perplexity_items_needed(
    limit_pct: float,
    true_rise_pct: float,
    level: float,
    ppl_doc_sd: float = PPL_DOC_SD,
    power: float = POWER,
    kind: str = "over",
) -> int | None:
    """Documents for `power`: the normal sample size, raised until the guard's t test reaches `power`."""
    if kind not in ("over", "within"):
        raise ValueError(f"kind must be 'over' or 'within', got {kind!r}")
    gap = math.log1p(true_rise_pct / 100.0) - math.log1p(limit_pct / 100.0)
    gap = gap if kind == "over" else -gap
    if gap <= 0.0:
        return None
    z = float(special.ndtri(1.0 - level)) + float(special.ndtri(power))
    low = max(2, math.ceil((ppl_doc_sd * z / gap) ** 2))

    def enough(n: int) -> bool:
        if kind == "over":
            return perplexity_power(n, true_rise_pct, limit_pct, level, ppl_doc_sd) >= power
        return perplexity_within_power(n, limit_pct, level, ppl_doc_sd, true_rise_pct) >= power

    high = low
    while not enough(high):
        low, high = high, 2 * high
    while high - low > 1:  # the t quantile's extra width at small n: the least n that is enough
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


def _se(n: int, ppl_doc_sd: float) -> float:
    if n < 2:
        raise ValueError(f"n must be at least 2 documents, got {n!r}")
    if ppl_doc_sd <= 0.0:
        raise ValueError(f"ppl_doc_sd must be positive, got {ppl_doc_sd!r}")
    return ppl_doc_sd / math.sqrt(n)


@lru_cache(maxsize=10_000)
def _critical(n: int, se: float, limit_pct: float, level: float, status: str) -> float:
    """The observed log ratio at which the guard's verdict turns `status` (over above it, within below it)."""
    edge = math.log1p(limit_pct / 100.0)
    lo, hi = (edge, edge + 40.0 * se) if status == "over" else (edge - 40.0 * se, edge)
    for _ in range(60):
        mid = (lo + hi) / 2.0
        called = _perplexity(mid, se, n, limit_pct, level) == status
        if status == "over":
            lo, hi = (lo, mid) if called else (mid, hi)
        else:
            lo, hi = (mid, hi) if called else (lo, mid)
    return (lo + hi) / 2.0


def _perplexity(log_ratio: float, se: float, n: int, limit_pct: float, level: float) -> str:
    before = 10.0  # the scale of perplexity does not enter a percent verdict
    after = before * math.exp(log_ratio)
    test = LogRatioTest(log_ratio, se, n, before).to_dict()
    relative = math.expm1(log_ratio)
    comparison = Comparison(
        _PROBE,
        "general",
        "perplexity",
        False,
        before,
        after,
        after - before,
        relative,
        None,
        None,
        None,
        n,
        "info",
        "",
        test,
    )
    (check,) = Budget([Limit(_PROBE, limit_pct, "percent")]).check([comparison], level, level)
    return check.status
