"""guard.kl_calibration: change = slope * KL across runs, its interval over runs, and the KL limit it implies."""

from __future__ import annotations

import numpy as np
import pytest

from forgetless.errors import ForgetlessError
from forgetless.guard.budget import Budget
from forgetless.guard.kl_calibration import CALIBRATION_SCHEMA, KLPoint, calibrate, fit_probe, kl_budgets


def synthetic(rng: np.random.Generator, runs: int, slope: float, checks: int = 4, spread: float = 0.3) -> list[KLPoint]:
    """Runs whose own slope varies around `slope` (by `spread`, relative), each seen at `checks` steps."""
    points = []
    for r in range(runs):
        own = slope * (1 + spread * rng.standard_normal())
        top = rng.uniform(0.01, 0.1)
        for t in range(1, checks + 1):
            kl = top * t / checks
            change = own * kl + 0.3 * rng.standard_normal()
            points.append(KLPoint(f"run{r}", "arc_easy", "points", kl, change, 10 * t, t < checks))
    return points


def test_recovers_the_slope_within_its_interval() -> None:
    fit = fit_probe(synthetic(np.random.default_rng(0), 8, slope=160.0))
    assert fit.low < 160.0 < fit.high
    assert fit.slope == pytest.approx(160.0, rel=0.25)
    assert (fit.runs, fit.points, fit.level) == (8, 32, 0.9)
    assert fit.r2 is not None and fit.r2 > 0.5


def test_exact_line_through_the_origin() -> None:
    # Three runs on change = 50 KL exactly: slope 50, a zero-width interval, R^2 1.
    points = [KLPoint(f"r{i}", "lambada", "percent", kl, 50 * kl, 1, False) for i, kl in enumerate((0.01, 0.02, 0.04))]
    fit = fit_probe(points)
    assert fit.slope == pytest.approx(50.0) and fit.low == pytest.approx(50.0) and fit.high == pytest.approx(50.0)
    assert fit.r2 == pytest.approx(1.0) and fit.max_kl == 0.04


def test_interval_coverage_over_many_draws() -> None:
    # The jackknife over runs with t quantiles: measured 84-90% for a nominal 90% (module docstring).
    # A percentile bootstrap over runs covered 58% with 3 runs and 79% with 6: this margin catches it.
    rng = np.random.default_rng(1)
    for runs in (3, 6):
        covered = [(f.low <= 100.0 <= f.high) for f in (fit_probe(synthetic(rng, runs, 100.0)) for _ in range(400))]
        assert 0.80 <= np.mean(covered) <= 0.96, (runs, np.mean(covered))


def test_points_within_runs_are_not_counted_as_runs() -> None:
    # 40 checks of one run each: resampling points would give a narrow interval; runs give a wide one.
    rng = np.random.default_rng(2)
    many = fit_probe(synthetic(rng, 3, 100.0, checks=40, spread=0.5))
    assert many.runs == 3 and many.points == 120
    assert many.high - many.low > 20  # three runs whose slopes differ by about 50%: nowhere near certain


def hand_worked() -> list[KLPoint]:
    """Three runs, one probe: change = 60, 80 and 100 x KL exactly, each at KL 0.01, 0.02 and 0.04."""
    kls = (0.01, 0.02, 0.04)
    return [
        KLPoint(f"r{s}", "arc_easy", "points", k, s * k, i, i < 2) for s in (60, 80, 100) for i, k in enumerate(kls)
    ]


def test_inversion_on_a_hand_worked_example() -> None:
    # Each run: sum kl^2 = 0.0021, sum kl * change = slope x 0.0021. Pooled: (60 + 80 + 100) / 3 = 80.
    # Leaving out each run: 90, 80, 70; jackknife se = sqrt(2/3 x 200) = 11.547; t(0.95, 2 df) = 2.91999:
    # half width 33.717, interval [46.283, 113.717]. 5pt / 113.717 = kl:0.04397, past the largest KL seen (0.04).
    calibration = calibrate(hand_worked())
    (fit,) = calibration.fits
    assert fit.slope == pytest.approx(80.0)
    assert (fit.low, fit.high) == (pytest.approx(46.283, abs=1e-3), pytest.approx(113.717, abs=1e-3))
    # The unnamed 2pt does not bound arc_easy, which has its own limit (as in a budget).
    (five,) = kl_budgets(calibration, Budget.parse("arc_easy:5pt,2pt"))
    assert five.kl == pytest.approx(5 / 113.717, rel=1e-5) and five.extrapolated
    text = five.describe()
    assert five.rounded == pytest.approx(0.043)  # rounded down: 0.044 would let the fit pass 5pt
    assert text.startswith("kl:0.043 keeps arc_easy within 5pt in the runs seen (slope 80pt per nat, 90% interval")
    assert "[46.3, 114], 3 runs)" in text and "past the largest KL seen (0.04): an extrapolation" in text


def test_level_widens_the_interval_and_lowers_the_kl_limit() -> None:
    narrow, wide = calibrate(hand_worked(), level=0.5), calibrate(hand_worked(), level=0.99)
    assert wide.fits[0].high > narrow.fits[0].high > 80
    assert kl_budgets(wide, Budget.parse("2pt"))[0].kl < kl_budgets(narrow, Budget.parse("2pt"))[0].kl


def test_no_drop_gives_no_kl_limit() -> None:
    points = [KLPoint(f"r{i}", "mc", "points", k, -30 * k, 1, False) for i, k in enumerate((0.01, 0.02, 0.03))]
    (budget,) = kl_budgets(calibrate(points), Budget.parse("5pt"))
    assert budget.kl is None and budget.describe().startswith("no KL limit follows for mc within 5pt")


def test_final_only_drops_the_checks_during_training() -> None:
    assert calibrate(hand_worked()).fits[0].points == 9
    only = calibrate(hand_worked(), within_run=False)
    assert only.fits[0].points == 3 and only.to_dict()["within_run"] is False
    data = only.to_dict()
    assert data["schema"] == CALIBRATION_SCHEMA and data["runs"] == ["r100", "r60", "r80"]
    assert data["fits"][0]["slope"] == pytest.approx(80.0) and "not a guarantee" in data["caveat"]


def test_refusals() -> None:
    with pytest.raises(ForgetlessError, match=r"2 run\(s\) with the KL logged; a fit across runs needs 3 or more"):
        calibrate([p for p in hand_worked() if p.run != "r60"])
    calibration = calibrate(hand_worked())
    with pytest.raises(ForgetlessError, match=r"probe 'hellaswag' in points has no fit .*fitted: arc_easy \(pt\)"):
        kl_budgets(calibration, Budget.parse("hellaswag:5pt"))
    with pytest.raises(ForgetlessError, match=r"--budget '10%': no probe in percent has a fit"):
        kl_budgets(calibration, Budget.parse("10%"))
    with pytest.raises(ForgetlessError, match=r"bounds the KL itself"):
        kl_budgets(calibration, Budget.parse("kl:0.05"))
    with pytest.raises(ForgetlessError, match=r"level 1.5 must be between 0 and 1"):
        calibrate(hand_worked(), level=1.5)
    # A probe scored in two runs only is left out with a note, the others are fitted.
    extra = [KLPoint(f"r{s}", "boolq", "points", 0.02, 1.0, 2, False) for s in (60, 80)]
    calibration = calibrate([*hand_worked(), *extra])
    assert [f.probe for f in calibration.fits] == ["arc_easy"]
    assert calibration.notes == ["boolq (points): in 2 of 3 runs, too few to fit"]
