"""One test per paired measure: its interval and its p-values come from the same statistic.

A forgetting verdict asks two questions of the same before/after data: where does the change lie
(an interval) and is it past a line (a p-value against "no change", or against a budget's limit).
Answering them with two procedures lets them disagree (a bootstrap interval that excludes zero
beside a McNemar p of 0.125). Here each measure has one statistic `T(null)`, decreasing in the
null value of the change; the interval at level 1 - a is every null with |T| <= the 1 - a/2
quantile, and the p-values are tail probabilities of the same `T`. So "the interval excludes x"
and "p < a against x" are the same statement, at any level and for any x.

- `PairedBinaryTest`: 0/1 scores of the same items (accuracy). Tango's score test for the
  difference of paired proportions (Tango 1998, Statistics in Medicine 17:891-908), from the
  counts of items lost (right -> wrong) and gained (wrong -> right). At a null of zero it is
  McNemar's z; its intervals keep their level with few discordant items, where a Wald interval
  collapses (no item changed: Wald gives [0, 0], Tango +-z^2 / (n + z^2)).
- `PairedMeanTest`: continuous per-item changes (a gold answer's log-probability): Student's t.
- `LogRatioTest`: perplexity, a ratio of sums over documents; the change of log perplexity
  sum(d_i) / sum(t_i) with its linearized (delta-method) standard error and Student's t.

Each test is rebuilt from a few sufficient statistics (`to_dict` / `test_from_dict`), so a
comparison saved in JSON can be judged again at another level without its items.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy import optimize, special

Alternative = Literal["two-sided", "less", "greater"]


class PairedTest:
    """The change `after - before` of one measure on paired items, on the measure's own scale."""

    kind: str = ""
    estimate: float
    n: int

    def statistic(self, null: float) -> float:
        """The standardized distance of the estimate from `null`; decreasing in `null`."""
        raise NotImplementedError

    def _cdf(self, x: float) -> float:
        raise NotImplementedError

    def _quantile(self, q: float) -> float:
        raise NotImplementedError

    def p_value(self, null: float = 0.0, alternative: Alternative = "two-sided") -> float:
        """P-value against `change == null`; "less": the change is below `null`, "greater": above."""
        t = self.statistic(null)
        if math.isnan(t):
            return 1.0
        if alternative == "less":
            return self._cdf(t)  # P[T <= t] under the null
        if alternative == "greater":
            return self._cdf(-t)
        return min(1.0, 2.0 * self._cdf(-abs(t)))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Every null value the two-sided test at 1 - level does not reject."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
        return self._bounds(self._quantile((1.0 + level) / 2.0))

    def _bounds(self, q: float) -> tuple[float, float]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class PairedBinaryTest(PairedTest):
    """Accuracy change from `lost` (right -> wrong) and `gained` (wrong -> right) of `n` items."""

    lost: int
    gained: int
    n: int
    kind = "paired_binary"

    @property
    def estimate(self) -> float:  # type: ignore[override]
        return (self.gained - self.lost) / self.n

    def statistic(self, null: float) -> float:
        n, gained, lost = self.n, self.gained, self.lost
        # Tango's restricted maximum-likelihood estimate of P(lost) under change == null.
        a = 2.0 * n
        b = -gained - lost + (2.0 * n - gained + lost) * null
        c = -lost * null * (1.0 - null)
        p_lost = (math.sqrt(max(b * b - 4.0 * a * c, 0.0)) - b) / (2.0 * a)
        variance = n * (2.0 * p_lost + null * (1.0 - null))
        numerator = gained - lost - n * null
        if variance <= 0.0:  # no item changed and null 0: the data sit exactly on the null
            return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)
        return numerator / math.sqrt(variance)

    def _cdf(self, x: float) -> float:
        return float(special.ndtr(x))  # scipy.stats.norm.cdf without its per-call overhead

    def _quantile(self, q: float) -> float:
        return float(special.ndtri(q))

    def _bounds(self, q: float) -> tuple[float, float]:
        est, edge = self.estimate, 1.0 - 1e-12
        low = -1.0 if est <= -edge else optimize.brentq(lambda d: self.statistic(d) - q, -edge, est, xtol=1e-12)
        high = 1.0 if est >= edge else optimize.brentq(lambda d: self.statistic(d) + q, est, edge, xtol=1e-12)
        return float(low), float(high)


class _StudentT(PairedTest):
    """Tests whose statistic follows Student's t with n - 1 degrees of freedom."""

    def _cdf(self, x: float) -> float:
        return float(special.stdtr(self.n - 1, x))  # Student's t cdf

    def _quantile(self, q: float) -> float:
        return float(special.stdtrit(self.n - 1, q)) if self.n > 1 else math.nan


@dataclass(frozen=True)
class PairedMeanTest(_StudentT):
    """Mean of per-item changes with their standard deviation: Student's t with n - 1 degrees of freedom."""

    estimate: float
    sd: float
    n: int
    kind = "paired_mean"

    @property
    def stderr(self) -> float:
        return self.sd / math.sqrt(self.n) if self.n > 1 else math.nan

    def statistic(self, null: float) -> float:
        se, distance = self.stderr, self.estimate - null
        if math.isnan(se):
            return math.nan
        if se == 0.0:
            return 0.0 if distance == 0 else math.copysign(math.inf, distance)
        return distance / se

    def _bounds(self, q: float) -> tuple[float, float]:
        return self.estimate - q * self.stderr, self.estimate + q * self.stderr


@dataclass(frozen=True)
class LogRatioTest(_StudentT):
    """Perplexity change: `log_ratio` = log(after / before), reported on the scale after - before."""

    log_ratio: float
    stderr: float  # of log_ratio, linearized over documents
    n: int
    before: float  # perplexity before: maps log_ratio to the change after - before
    kind = "log_ratio"

    @property
    def estimate(self) -> float:  # type: ignore[override]
        return self.before * math.expm1(self.log_ratio)

    def statistic(self, null: float) -> float:
        if null <= -self.before:  # perplexity cannot fall to zero or below
            return math.inf
        if math.isnan(self.stderr):
            return math.nan
        distance = self.log_ratio - math.log1p(null / self.before)
        if self.stderr == 0.0:
            return 0.0 if distance == 0 else math.copysign(math.inf, distance)
        return distance / self.stderr

    def _bounds(self, q: float) -> tuple[float, float]:
        low, high = self.log_ratio - q * self.stderr, self.log_ratio + q * self.stderr
        return self.before * math.expm1(low), self.before * math.expm1(high)


TESTS: dict[str, type[PairedTest]] = {t.kind: t for t in (PairedBinaryTest, PairedMeanTest, LogRatioTest)}


def paired_test_from_dict(data: dict[str, Any]) -> PairedTest:
    """The test a comparison saved (`Comparison.test`), rebuilt to judge it at another level or limit."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        return TESTS[data["kind"]](**fields)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a saved paired test: {data!r} ({error})") from error


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion (Wilson 1927): the proportions p whose score test
    |k - n p| / sqrt(n p (1 - p)) is within z. In closed form, because scipy's binomtest (whose
    `proportion_ci(method="wilson")` it equals, tested) first computes an exact p-value, 3 ms a call."""
    z = float(special.ndtri(0.5 + level / 2.0))
    p, z2 = successes / n, z * z
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


# -- robust tails: the studentized bootstrap ------------------------------------------------------------
# A budget judges a change at small one-sided levels (a run's 5% split over its checks and limits), where
# Student's t on skewed per-item changes is not to be trusted (a few documents that a fine-tune hurts far
# more than the rest make the mean's sampling distribution skewed). The bootstrap-t (Efron & Tibshirani
# 1993, ch. 12; Hall 1988) resamples the items, studentizes each replicate by its own standard error and
# takes the null distribution of the same statistic T from the replicates: second-order accurate where t
# is first-order. It needs the per-item values, so it is used when they are at hand and n >= BOOTSTRAP_MIN.

BOOTSTRAP_DRAWS = 10_000
BOOTSTRAP_MIN = 20  # below this the replicates take too few distinct values; Student's t is used
_CHUNK = 1_000


def _replicates(seed: int, n: int, draws: int, studentized: Any) -> Any:
    """`studentized(indices)` over `draws` resamples of n items, in chunks; sorted, non-finite ones dropped."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, draws, _CHUNK):
        idx = rng.integers(0, n, size=(min(_CHUNK, draws - start), n), dtype=np.int32)
        out.append(studentized(idx))
    values = np.concatenate(out)
    return np.sort(values[np.isfinite(values)])


class _BootstrapT(PairedTest):
    """p-values and intervals from the bootstrap distribution of the studentized statistic: a p-value is the
    share of replicates at least as extreme, an interval's ends are the replicates' quantiles (the inverse of
    that share), so a value lies outside the interval at level 1 - 2a exactly when its one-sided p is <= a."""

    draws: int
    seed: int

    def _t_star(self) -> Any:
        raise NotImplementedError

    @property
    def _sorted(self) -> Any:
        cached = self.__dict__.get("_t_sorted")
        if cached is None:
            cached = self._t_star()
            object.__setattr__(self, "_t_sorted", cached)  # frozen dataclass: a cache, not state
        return cached

    def _tail_le(self, x: float) -> float:
        import numpy as np

        t = self._sorted
        return int(np.searchsorted(t, x, side="right")) / t.size

    def _tail_ge(self, x: float) -> float:
        import numpy as np

        t = self._sorted
        return int(t.size - np.searchsorted(t, x, side="left")) / t.size

    def p_value(self, null: float = 0.0, alternative: Alternative = "two-sided") -> float:
        t = self.statistic(null)
        if math.isnan(t) or self._sorted.size == 0:
            return 1.0
        if alternative == "less":
            return self._tail_le(t)
        if alternative == "greater":
            return self._tail_ge(t)
        return min(1.0, 2.0 * min(self._tail_le(t), self._tail_ge(t)))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
        t = self._sorted
        if t.size == 0:
            return math.nan, math.nan
        # A one-sided test at a rejects T when at most a share a of the replicates lie beyond it, so the
        # values it keeps run from the (m+1)-th smallest replicate to the (m+1)-th largest, m = floor(a B).
        m = min(int(math.floor((1.0 - level) / 2.0 * t.size + 1e-9)), t.size - 1)
        return self._between(float(t[t.size - 1 - m]), float(t[m]))

    def _between(self, q_high: float, q_low: float) -> tuple[float, float]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


@dataclass(frozen=True)
class BootstrapMeanTest(_BootstrapT, PairedMeanTest):
    """The mean per-item change (as PairedMeanTest) with bootstrap-t tails from the per-item `diffs`."""

    diffs: tuple[float, ...] = ()
    draws: int = BOOTSTRAP_DRAWS
    seed: int = 0
    kind = "bootstrap_mean"

    def _t_star(self) -> Any:
        import numpy as np

        d = np.sort(np.asarray(self.diffs, dtype=np.float64))  # items in a canonical order: the replicates
        n, mean = d.size, float(d.mean())  # depend on which items were scored, not on the order they came in

        def studentized(idx: Any) -> Any:
            x = d[idx]
            se = x.std(axis=1, ddof=1) / math.sqrt(n)
            with np.errstate(divide="ignore", invalid="ignore"):
                return (x.mean(axis=1) - mean) / se

        return _replicates(self.seed, n, self.draws, studentized)

    def _between(self, q_high: float, q_low: float) -> tuple[float, float]:
        return self.estimate - q_high * self.stderr, self.estimate - q_low * self.stderr


@dataclass(frozen=True)
class BootstrapLogRatioTest(_BootstrapT, LogRatioTest):
    """The perplexity change (as LogRatioTest) with bootstrap-t tails from per-document NLL changes and tokens."""

    diffs: tuple[float, ...] = ()
    tokens: tuple[float, ...] = ()
    draws: int = BOOTSTRAP_DRAWS
    seed: int = 0
    kind = "bootstrap_log_ratio"

    def _t_star(self) -> Any:
        import numpy as np

        d, t = np.asarray(self.diffs, dtype=np.float64), np.asarray(self.tokens, dtype=np.float64)
        order = np.lexsort((t, d))  # a canonical order: the replicates depend on the items, not their order
        d, t, n = d[order], t[order], d.size

        def studentized(idx: Any) -> Any:
            x, w = d[idx], t[idx]
            total = w.sum(axis=1)
            ratio = x.sum(axis=1) / total
            residuals = x - ratio[:, None] * w
            se = np.sqrt((residuals**2).sum(axis=1) * n / (n - 1)) / total
            with np.errstate(divide="ignore", invalid="ignore"):
                return (ratio - self.log_ratio) / se

        return _replicates(self.seed, n, self.draws, studentized)

    def _between(self, q_high: float, q_low: float) -> tuple[float, float]:
        low, high = self.log_ratio - q_high * self.stderr, self.log_ratio - q_low * self.stderr
        return self.before * math.expm1(low), self.before * math.expm1(high)


TESTS.update({t.kind: t for t in (BootstrapMeanTest, BootstrapLogRatioTest)})


def data_seed(*arrays: Any) -> int:
    """A resampling seed for these data: the run's seed (metrics.resampling) mixed with a hash of the data,
    so the same items give the same replicates within a run, and another run draws others."""
    import hashlib

    import numpy as np

    from forgetless.metrics.resampling import run_seed

    h = hashlib.blake2b(digest_size=8)
    h.update(run_seed().to_bytes(8, "little"))
    for a in arrays:  # sorted: the same items in another order give the same seed
        h.update(np.sort(np.asarray(a, dtype=np.float64), axis=None).tobytes())
    return int.from_bytes(h.digest(), "little") >> 1
