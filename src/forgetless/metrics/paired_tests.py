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
