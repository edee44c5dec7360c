"""The code scenario (continued pre-training on stdlib source, watched) end to end with the tiny model."""

from __future__ import annotations

import json

import yaml

from forgetless.pipeline import code_demo


def test_onset_is_the_first_check_over_budget() -> None:
    within = {"probe": "lambada_ppl", "metric": "perplexity", "change": 4.0, "limit": 10, "unit": "percent"}
    noise = {**within, "change": 12.0, "status": "noise"}  # past the limit but not beyond noise: not yet
    over = {**within, "change": 15.0, "status": "over"}
    watch = {
        "points": [
            {"step": 0, "checks": []},
            {"step": 10, "checks": [{**within, "status": "within"}]},
            {"step": 20, "checks": [noise]},
            {"step": 30, "checks": [over]},
            {"step": 40, "checks": [{**over, "change": 30.0}]},
        ]
    }
    assert code_demo.onset(watch) == {"step": 30, "over": [over]}
    assert code_demo.onset({"points": watch["points"][:3]}) is None
    assert code_demo._describe(over) == "lambada_ppl perplexity +15.0% (limit +10%)"
    drop = {"probe": "arc_easy", "metric": "acc", "change": 14.0, "limit": 5, "unit": "points", "status": "over"}
    assert code_demo._describe(drop) == "arc_easy acc -14.0 points (limit -5)"


def test_code_scenario_is_a_watched_run(tiny_model, tiny_suite, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(code_demo, "BASE_MODEL", str(tiny_model))
    monkeypatch.setattr(code_demo, "SUITE", str(tiny_suite))
    monkeypatch.setattr(code_demo, "FILES", 40)
    monkeypatch.setattr(code_demo, "HELD_OUT", 4)
    preset = code_demo.CodePreset(steps=4, learning_rate=1e-2, every=2)
    done = code_demo.run_code_demo(out=tmp_path / "code", preset=preset)
    config = yaml.safe_load((tmp_path / "code" / "scenario.yaml").read_text())
    assert config["stages"][0]["data"]["source"]["path"] == str(code_demo.STDLIB)
    assert config["guard"] == {"budget": code_demo.BUDGET, "policy": "warn", "every": 2}
    results = json.loads((tmp_path / "code" / "results.json").read_text())
    watch = results["stages"][0]["training"]["watch"]
    assert [p["step"] for p in watch["points"]] == [0, 2, 4]
    # The held-out stdlib files are the target: four steps at a high rate must lower their perplexity.
    target = next(c for c in results["final"]["comparisons"] if c["probe"] == "stage_stdlib")
    assert target["after"] < target["before"]
    assert done["onset"] == code_demo.onset(watch)
    expected = f"forgetting began at step {done['onset']['step']}" if done["onset"] else "no general probe left"
    assert done["summary"].startswith(expected)
    assert (tmp_path / "code" / "report.html").is_file()
