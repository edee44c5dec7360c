"""`forgetless calibrate-kl RUN_DIR...` on synthetic run folders (results.json as `forgetless run` writes it)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from forgetless.errors import ForgetlessError
from forgetless.paths import write_json_atomic
from forgetless.pipeline.kl_runs import calibrate_runs, run_points
from forgetless.pipeline.run import RUN_SCHEMA
from forgetless.probes import Comparison

runner = CliRunner()
ACC, PPL, GOLD = 0.6, 20.0, -1.2  # arc_easy's accuracy, lambada's perplexity, arc_easy's gold log-prob at the base


def values(arc_pt: float, lambada_pct: float) -> dict[str, list[Any]]:
    """The watch's values for changes in the budget's units (positive = worse)."""
    return {
        "arc_easy": ["acc", ACC - arc_pt / 100],
        "lambada": ["perplexity", PPL * (1 + lambada_pct / 100)],
        "stage_sst2": ["perplexity", 50.0],  # the target: never fitted
    }


def comparison(probe: str, metric: str, before: float, after: float, higher: bool, role: str = "general") -> dict:
    relative = after / before - 1 if metric == "perplexity" else None
    return asdict(
        Comparison(probe, role, metric, higher, before, after, after - before, relative, *[None] * 3, 100, "")
    )


def write_run(folder: Path, slopes: tuple[float, float, float], top: float, kl: bool = True, **changes: Any) -> Path:
    """A finished one-stage run whose changes are slope x KL: arc_easy in points, lambada in %, gold in nats."""
    steps = [10, 20, 30, 40]
    kls = {s: top * s / 40 for s in range(5, 45, 5)}  # logged every 5 steps, checked every 10

    def change(step: int) -> tuple[float, float, float]:
        return slopes[0] * kls[step], slopes[1] * kls[step], slopes[2] * kls[step]

    points = [{"step": 0, "checks": [], "values": values(0, 0), "seconds": 0.0}]
    for step in steps:
        arc, lam, gold = change(step)
        nats = {"probe": "arc_easy", "metric": "gold_logprob", "change": gold, "limit": 1.0, "unit": "nats"}
        point = {"step": step, "last": step == 40, "values": values(arc, lam), "checks": [nats]}
        points.append(point | ({"kl": kls[step]} if kl else {}))
    watch = {"points": points, "events": [], "stopped": None}
    if kl:
        watch["kl"] = {"history": [[s, k, k * 0.9, k * 1.1] for s, k in kls.items()], "sequences": 32}
    arc, lam, gold = change(changes.get("end", 40))
    final = [
        comparison("arc_easy", "acc", ACC, ACC - arc / 100, True),
        comparison("arc_easy", "gold_logprob", GOLD, GOLD - gold, True),
        comparison("lambada", "perplexity", PPL, PPL * (1 + lam / 100), False),
        comparison("stage_sst2", "perplexity", 200.0, 50.0, False, "target"),
    ]
    primary = [{"name": "arc_easy", "primary": "acc"}, {"name": "lambada", "primary": "perplexity"}]
    result = {
        "schema": RUN_SCHEMA,
        "config": {"stages": [{"name": "sst2"}]},
        "baseline": {"model": {"fingerprint": "base"}, "probes": [*primary, {"name": "stage_sst2", "primary": "ppl"}]},
        "stages": [{"training": {"watch": watch | changes.get("watch", {})}}] * changes.get("stages", 1),
        "final": {"comparisons": final},
        "guard": {"final": []},
    }
    write_json_atomic(folder / "results.json", result)
    return folder


def write_runs(root: Path, n: int, seed: int = 0) -> list[Path]:
    """n runs, slopes 100pt, 300% and 2 nats per nat of KL, varying 20% from run to run."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        scale = 1 + 0.2 * rng.standard_normal()
        out.append(write_run(root / f"run{i}", (100 * scale, 300 * scale, 2 * scale), rng.uniform(0.02, 0.08)))
    return out


def test_a_runs_points(tmp_path: Path) -> None:
    data = json.loads((write_run(tmp_path / "a", (100, 300, 2), 0.04) / "results.json").read_text())
    points, notes = run_points("a", data)
    assert notes == [] and {p.probe for p in points} == {"arc_easy", "lambada"}  # never the target
    end = [p for p in points if not p.within_run]
    assert {(p.probe, p.unit) for p in end} == {("arc_easy", "points"), ("arc_easy", "nats"), ("lambada", "percent")}
    assert all(p.kl == pytest.approx(0.04) and p.step == 40 for p in end)
    by_unit = {p.unit: p.change for p in end}
    assert by_unit == {"points": pytest.approx(4.0), "percent": pytest.approx(12.0), "nats": pytest.approx(0.08)}
    # Checks at 10, 20, 30 (40 is the end, the audit's weights): 3 checks x 3 changes, each on its own KL.
    within = [p for p in points if p.within_run]
    assert sorted({p.step for p in within}) == [10, 20, 30] and len(within) == 9
    assert all(p.change == pytest.approx({"points": 100, "percent": 300, "nats": 2}[p.unit] * p.kl) for p in within)


def test_rollback_and_stages(tmp_path: Path) -> None:
    events = [{"step": 40, "action": "rollback", "restored_step": 20}]
    rolled = write_run(
        tmp_path / "b", (100, 300, 2), 0.04, end=20, watch={"stopped": {"action": "rollback"}} | {"events": events}
    )
    points, _ = run_points("b", json.loads((rolled / "results.json").read_text()))
    end = [p for p in points if not p.within_run]
    assert {p.step for p in end} == {20} and all(p.kl == pytest.approx(0.02) for p in end)  # the restored weights
    assert sorted({p.step for p in points if p.within_run}) == [10, 30, 40]  # checks after it are still pairs
    two = write_run(tmp_path / "c", (100, 300, 2), 0.04, stages=2)
    points, notes = run_points("c", json.loads((two / "results.json").read_text()))
    assert notes == ["c: 2 stages; only the first is fitted (a later stage's KL is from its own start)"]
    assert {p.step for p in points if not p.within_run} == {40}  # the first stage's last check is its end


def test_calibrate_kl_end_to_end(tmp_path: Path) -> None:
    from forgetless.cli.main import app

    runs = write_runs(tmp_path, 6)
    out = tmp_path / "fit.json"
    args = ["calibrate-kl", *map(str, runs), "--budget", "arc_easy:5pt,10%", "--out", str(out)]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema"] == "forgetless.klcalibration/1" and data["runs"] == [f"run{i}" for i in range(6)]
    fits = {(f["probe"], f["unit"]): f for f in data["fits"]}
    assert set(fits) == {("arc_easy", "points"), ("arc_easy", "nats"), ("lambada", "percent")}
    for key, truth in ((("arc_easy", "points"), 100), (("lambada", "percent"), 300), (("arc_easy", "nats"), 2)):
        assert fits[key]["low"] < truth < fits[key]["high"] and fits[key]["runs"] == 6 and fits[key]["points"] == 24
    arc = fits["arc_easy", "points"]
    budgets = {b["probe"]: b for b in data["budgets"]}
    assert budgets["arc_easy"]["kl"] == pytest.approx(5 / arc["high"])
    assert budgets["lambada"]["kl"] == pytest.approx(10 / fits["lambada", "percent"]["high"])
    text = " ".join(result.output.split())
    assert budgets["arc_easy"]["rounded"] <= budgets["arc_easy"]["kl"] < budgets["arc_easy"]["rounded"] * 1.1
    rounded = budgets["arc_easy"]["rounded"]
    sentence = f"kl:{rounded:.2g} keeps arc_easy within 5pt in the runs seen (slope {arc['slope']:.3g}pt"
    assert sentence in text and "90% interval" in text and "6 runs)" in text
    assert "change = slope x KL across 6 runs" in text and "not a guarantee" in text
    final = calibrate_runs(runs, within_run=False)
    assert all(f.points == 6 for f in final.fits)


def test_refusals(tmp_path: Path) -> None:
    from forgetless.cli.main import app

    runs = write_runs(tmp_path, 3)
    result = runner.invoke(app, ["calibrate-kl", *map(str, runs[:2])])
    assert result.exit_code == 2 and "2 run(s) with the KL logged; a fit across runs needs 3 or more" in result.output
    off = write_run(tmp_path / "off", (100, 300, 2), 0.04, kl=False)
    result = runner.invoke(app, ["calibrate-kl", *map(str, runs), str(off)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "no KL logged in run(s) off: guard.kl was off" in text and "guard.kl: true" in text
    result = runner.invoke(app, ["calibrate-kl", *map(str, runs), "--budget", "hellaswag:5pt"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "probe 'hellaswag' in points has no fit from these runs" in text
    assert "fitted: arc_easy (nats), arc_easy (pt), lambada (%)" in text
    result = runner.invoke(app, ["calibrate-kl", *map(str, runs), "--budget", "arc_easy:5 apples"])
    assert result.exit_code == 2 and "is not [probe:]AMOUNT UNIT" in " ".join(result.output.split())
    result = runner.invoke(app, ["calibrate-kl", *map(str, runs), str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no results.json in" in result.output
    with pytest.raises(ForgetlessError, match="given twice"):
        calibrate_runs([*runs, runs[0]])
