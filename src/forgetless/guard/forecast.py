"""Forecast a budgeted change at the run's last step from the checks so far: a shifted power law in steps.

Kalajdzievski (2024, "Scaling Laws for Forgetting When Fine-Tuning Large Language Models", arXiv
2401.05605) finds that forgetting grows as a shifted power law in the number of update steps (and of
parameters tuned, fixed within one run). Within a run we fit

    change(t) = a * ((t + s)^b - s^b)

with `change` a check's loss in its limit's unit (points, percent, nats, KL) and `t` the step. It is the
shifted power law a * (t + s)^b + c with the offset c pinned to -a * s^b, because every change is
measured against the step-0 weights, where it is 0 by definition (the data imply it: the baseline
compared with itself). a sets the scale (its sign: losing or gaining), b > 0 the curvature (b < 1:
fast then slower, as forgetting usually goes; b > 1: accelerating), s the shift (s -> 0: a pure power
law of steps; s large: a straight line). With fewer than four checks the shift is fixed at one step
(three parameters through three points would leave nothing to judge the fit by).

The fit is weighted least squares (weights 1 / se^2, each check's standard error read from its
paired interval) with a profiled out in closed form (the model is linear in it): the best (b, s) is
found on a grid, then refined by `scipy.optimize.least_squares` within bounds (0.05 <= b <= 1.5,
one step <= s <= the run's length).

Uncertainty: a bootstrap over items and checks, from what every check keeps (its saved interval;
the per-item data are not kept in watch.json, and each probe kind holds them in its own shape).
- items: each replicate draws every check's change again from its items' sampling spread (normal
  with the check's standard error around the fitted curve: a parametric bootstrap);
- checks: when the checks scatter about the curve more than their items explain (reduced chi-square
  above 1, with at least one degree of freedom), every spread is widened by its square root
  (Birge's ratio: what a residual bootstrap over the checks would estimate with this few of them).
Each replicate is refit on the same grid (5% apart in b, 37% in s, well inside the bootstrap's spread).
The interval is a prediction interval for the change the last step's check will measure: the
replicate's curve at the end plus that check's own noise (the latest check's spread, scaled to all
items). Because checks reuse the same items, their interval also counts the spread between items
that the checks share: for probes whose items move together (perplexity) the band is conservative.

Two naive forecasters for the validation study: the last measured change (with its own interval),
and a straight line through the step-0 origin and the checks (weighted least squares).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special

from forgetless.metrics.paired_tests import data_seed

B_RANGE = (0.05, 1.5)  # up to a mild acceleration (a warmup ending); wider, a flat start reaches any value
LEVEL = 0.90  # two-sided; its lower end past the limit = 95% one-sided confidence of a crossing
DRAWS = 10_000  # bootstrap replicates; the seed is the run's mixed with the series (metrics.resampling)
MIN_CHECKS = 2  # a change at step 0 and one check make a line, not a curve
FREE_SHIFT = 4  # checks from which the shift is fitted too
_B_GRID = np.geomspace(B_RANGE[0], B_RANGE[1], 80)
_S_GRID = 20  # log-spaced shifts between one step and the run's length


@dataclass
class Series:
    """One budgeted change (a probe in one limit's unit) over the checks; steps > 0."""

    probe: str
    unit: str
    limit: float
    steps: np.ndarray
    changes: np.ndarray  # the loss in the limit's unit, positive = worse
    sigmas: np.ndarray  # each change's standard error (nan when the check had no interval)
    shares: np.ndarray  # the share of the probe's items each check scored (sequential checks)

    @property
    def key(self) -> str:
        return self.probe if self.unit != "nats" else f"{self.probe}/nats"


@dataclass
class Forecast:
    """The predicted change at `end_step` with its `level` interval, and when the limit will be crossed.

    `crossing_step`: where the fitted curve reaches the limit (None: not within the run). `within_until`:
    the last step the forecast keeps within the limit with (1 + level) / 2 confidence (None: the whole run).
    `p_cross`: the share of bootstrap replicates whose change at the end is past the limit.
    """

    probe: str
    unit: str
    limit: float
    method: str  # power | last | line
    checks: int  # checks fitted
    fitted_to: int  # the last step fitted
    end_step: int
    change: float
    low: float | None
    high: float | None
    level: float
    crossing_step: float | None
    within_until: int | None
    p_cross: float | None
    params: dict[str, float] = field(default_factory=dict)
    curve: list[list[float]] = field(default_factory=list)  # [step, fit, low, high] of the curve (no check noise)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def standard_error(low: float | None, high: float | None, level: float | None) -> float:
    """A check's standard error from its two-sided interval at `level` (nan when it has none)."""
    if low is None or high is None or level is None or not 0 < level < 1 or not math.isfinite(high - low):
        return math.nan
    return (high - low) / (2.0 * float(special.ndtri((1.0 + level) / 2.0)))


def _basis(x: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(x + s)^b - s^b, broadcast over the trailing axis of x."""
    return (x + s) ** b - s**b


def _weights(series: Series) -> np.ndarray | None:
    sig = np.asarray(series.sigmas, float)
    known = np.isfinite(sig) & (sig > 0)
    if not known.any():
        return None
    sig = np.where(known, sig, np.median(sig[known]))  # a check without an interval: a typical one's weight
    return 1.0 / sig**2


def _grid(end: int, free_shift: bool) -> tuple[np.ndarray, np.ndarray]:
    one = 1.0 / end
    shifts = np.geomspace(one, 1.0, _S_GRID) if free_shift else np.array([one])
    b, s = np.meshgrid(_B_GRID, shifts, indexing="ij")
    return b.ravel(), s.ravel()


def _best(ys: np.ndarray, g: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For data ys (R, k) and bases g (G, k): each row's best basis (index into G) and its a, in closed form.

    The weighted residual sum of squares of row r with basis j is sum(w y^2) - num^2 / den, so the best
    basis maximizes num^2 / den (num = sum(w g y), den = sum(w g^2)); a = num / den.
    """
    num = np.einsum("rk,gk->rg", ys * w, g)  # (R, G); not BLAS, whose threads cost more than this small product
    den = np.maximum((g**2 * w).sum(axis=1), 1e-300)
    pick = np.argmax(num**2 / den, axis=1)
    rows = np.arange(len(ys))
    return pick, num[rows, pick] / den[pick]


def fit_power(
    series: Series, end_step: int, level: float = LEVEL, draws: int = DRAWS, seed: int | None = None
) -> Forecast | None:
    """The shifted power law through `series` and its bootstrap forecast at `end_step` (None: too few checks)."""
    steps, ys = np.asarray(series.steps, float), np.asarray(series.changes, float)
    k, end = len(steps), max(int(end_step), int(steps.max(initial=1)))
    if k < MIN_CHECKS:
        return None
    x = steps / end
    free = k >= FREE_SHIFT
    weights = _weights(series)
    w = np.ones(k) if weights is None else weights  # no check has an interval: the residuals give the spread
    b_grid, s_grid = _grid(end, free)
    g = _basis(x[None, :], b_grid[:, None], s_grid[:, None])
    best = int(_best(ys[None, :], g, w)[0][0])
    b, s = _refine(x, ys, w, b_grid[best], s_grid[best], 1.0 / end, free)
    a = float(_best(ys[None, :], _basis(x, b, s)[None, :], w)[1][0])
    fitted = a * _basis(x, b, s)
    dof = k - (3 if free else 2)
    chi2 = float((w * (ys - fitted) ** 2).sum())
    if weights is None:
        birge = math.sqrt(chi2 / dof) if dof >= 1 else math.nan
    else:
        birge = math.sqrt(chi2 / dof) if dof >= 1 and chi2 > dof else 1.0
    params = {"a": a * end**-b, "b": b, "s": s * end}  # in steps: change(t) = a ((t + s)^b - s^b)
    center = a * float(_basis(np.array(1.0), b, s))
    forecast = Forecast(
        series.probe, series.unit, series.limit, "power", k, int(steps.max()), end, center, None, None, level,
        _crossing(a, b, s, series.limit, end), None, None, params,
    )  # fmt: skip
    if not math.isfinite(birge):
        return forecast
    # Bootstrap: redraw each check about the curve with its (widened) spread, refit each replicate on the grid.
    rng = np.random.default_rng(data_seed(steps, ys) if seed is None else seed)
    sig = birge / np.sqrt(w)
    reps = fitted[None, :] + sig[None, :] * rng.standard_normal((draws, k))
    pick, a_r = _best(reps, g, w)
    a_r, b_r, s_r = _polish(x, reps, w, a_r, b_grid[pick], s_grid[pick], 1.0 / end, free)
    last = int(np.argmax(steps))
    noise = sig[last] * math.sqrt(max(series.shares[last], 1e-9))  # the last step's check scores every item
    end_r = a_r * _basis(np.ones(draws), b_r, s_r) + noise * rng.standard_normal(draws)
    tail = (1.0 - level) / 2.0
    forecast.low, forecast.high = (float(v) for v in np.quantile(end_r, [tail, 1.0 - tail]))
    forecast.p_cross = float(np.mean(end_r > series.limit))
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.where(a_r > 0, (series.limit / a_r + s_r**b_r) ** (1.0 / b_r) - s_r, np.inf)  # as _crossing
    crossings = np.where(np.isfinite(reach), reach * end, np.inf) if series.limit > 0 else np.zeros(draws)
    # The replicates' early crossing: (1 + level) / 2 of them stay within the limit up to it.
    early = float(np.quantile(crossings, tail, method="inverted_cdf"))
    forecast.within_until = None if early > end else max(0, math.floor(early))
    xs = np.linspace(0.0, 1.0, 21)
    curves = a_r[:, None] * _basis(xs[None, :], b_r[:, None], s_r[:, None])
    lows, highs = np.quantile(curves, [tail, 1.0 - tail], axis=0)
    mids = a * _basis(xs, b, s)
    rows = zip(xs * end, mids, lows, highs, strict=True)
    forecast.curve = [[float(x), float(m), float(lo), float(hi)] for x, m, lo, hi in rows]
    return forecast


def _refine(x: np.ndarray, ys: np.ndarray, w: np.ndarray, b0: float, s0: float, one: float, free: bool):  # noqa: ANN202
    """scipy's bounded least squares from the grid's best (b, log s), a profiled out."""
    root_w = np.sqrt(w)

    def residuals(theta: np.ndarray) -> np.ndarray:
        b, s = theta[0], math.exp(theta[1]) if free else s0
        g = _basis(x, b, s)
        a = float((w * g * ys).sum() / max((w * g * g).sum(), 1e-300))
        return root_w * (ys - a * g)

    lower, upper = [B_RANGE[0], math.log(one)], [B_RANGE[1], 0.0]
    theta0 = [b0, math.log(s0)]
    if not free:
        lower, upper, theta0 = lower[:1], upper[:1], theta0[:1]
    theta0 = np.clip(theta0, lower, upper)
    result = optimize.least_squares(residuals, theta0, bounds=(lower, upper), x_scale="jac")
    b = float(result.x[0])
    return b, (math.exp(float(result.x[1])) if free else s0)


def _polish(x, ys, w, a, b, s, one: float, free: bool, rounds: int = 6):  # noqa: ANN001, ANN202
    """Damped Gauss-Newton steps for every replicate at once, from its grid point, within the bounds.

    x (k,), ys (R, k), w (k,); a, b, s (R,). The parameters are (a, b, log s), or (a, b) with s fixed.
    A step is kept only where it lowers that replicate's weighted residual sum of squares.
    """
    u, damping = np.log(s), 1e-3

    def sse(a, b, u):  # noqa: ANN001, ANN202
        return (w * (ys - a[:, None] * _basis(x[None, :], b[:, None], np.exp(u)[:, None])) ** 2).sum(axis=1)

    current = sse(a, b, u)
    for _ in range(rounds):
        s = np.exp(u)[:, None]
        xs, bb, aa = x[None, :] + s, b[:, None], a[:, None]
        g = xs**bb - s**bb
        jac = [g, aa * (xs**bb * np.log(xs) - s**bb * np.log(s))]  # d/da, d/db
        if free:
            jac.append(aa * bb * (xs ** (bb - 1) - s ** (bb - 1)) * s)  # d/d(log s)
        J = np.stack(jac, axis=-1)  # (R, k, p)
        JtW = J.transpose(0, 2, 1) * w
        H = JtW @ J
        H += damping * np.eye(J.shape[-1]) * np.maximum(np.diagonal(H, axis1=1, axis2=2), 1e-12)[:, :, None]
        grad = (JtW @ (ys - aa * g)[:, :, None])[..., 0]
        try:
            delta = np.linalg.solve(H, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        a2 = a + delta[:, 0]
        b2 = np.clip(b + delta[:, 1], *B_RANGE)
        u2 = np.clip(u + delta[:, 2], math.log(one), 0.0) if free else u
        better = sse(a2, b2, u2) < current
        a, b, u = np.where(better, a2, a), np.where(better, b2, b), np.where(better, u2, u)
        current = np.where(better, sse(a, b, u), current)
    return a, b, np.exp(u)


def _crossing(a: float, b: float, s: float, limit: float, end: int) -> float | None:
    """The step where a * ((x + s)^b - s^b) reaches `limit` (x = step / end); None: not within the run."""
    if a <= 0 or limit <= 0:
        return None if limit > 0 else 0.0
    x = (limit / a + s**b) ** (1.0 / b) - s
    return float(x * end) if x <= 1.0 else None


def last_value(series: Series, end_step: int, level: float = LEVEL) -> Forecast | None:
    """Naive: the change at the end is the last one measured, with that check's own interval."""
    if len(series.steps) == 0:
        return None
    i = int(np.argmax(series.steps))
    y, sig = float(series.changes[i]), float(series.sigmas[i])
    z = float(special.ndtri((1.0 + level) / 2.0))
    low, high = (y - z * sig, y + z * sig) if math.isfinite(sig) else (None, None)
    crossed = 0.0 if y > series.limit else None
    f = Forecast(series.probe, series.unit, series.limit, "last", len(series.steps), int(series.steps[i]), end_step,
                 y, low, high, level, crossed, None, None)  # fmt: skip
    return f


def straight_line(series: Series, end_step: int, level: float = LEVEL) -> Forecast | None:
    """Naive: a line through the origin (no change at step 0) and the checks, weighted by their spread."""
    steps, ys = np.asarray(series.steps, float), np.asarray(series.changes, float)
    if len(steps) == 0:
        return None
    w = _weights(series)
    w = np.ones(len(steps)) if w is None else w
    slope = float((w * steps * ys).sum() / (w * steps**2).sum())
    dof = len(steps) - 1
    chi2 = float((w * (ys - slope * steps) ** 2).sum())
    birge = math.sqrt(chi2 / dof) if dof >= 1 and chi2 > dof else 1.0
    se_slope = birge / math.sqrt(float((w * steps**2).sum()))
    last = int(np.argmax(steps))
    noise = birge / math.sqrt(w[last]) * math.sqrt(max(series.shares[last], 1e-9))
    z = float(special.ndtri((1.0 + level) / 2.0))
    center = slope * end_step
    half = z * math.sqrt((se_slope * end_step) ** 2 + noise**2)
    crossing = series.limit / slope if slope > 0 and series.limit / slope <= end_step else None
    return Forecast(series.probe, series.unit, series.limit, "line", len(steps), int(steps.max()), end_step, center,
                    center - half, center + half, level, crossing, None, None, {"slope": slope})  # fmt: skip
