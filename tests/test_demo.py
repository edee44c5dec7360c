"""The demo pipeline end to end with the tiny model in place of SmolLM2 (the real data is used)."""

from __future__ import annotations

import json

from forgetless.models import load_model
from forgetless.pipeline import demo
from forgetless.train.finetune import FinetuneSettings


def test_demo_trains_scores_and_reports(tiny_model, tiny_suite, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(demo, "load_model", lambda spec: load_model(str(tiny_model), device="cpu"))
    preset = demo.DemoPreset(
        str(tiny_suite), FinetuneSettings(steps=3, learning_rate=1e-2, batch_size=4, max_length=32)
    )
    monkeypatch.setitem(demo.PRESETS, "quick", preset)
    result = demo.run_demo(quick=True, out=tmp_path / "demo")

    assert (tmp_path / "demo" / "tuned" / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "demo" / "audit.json").read_text())
    assert saved["summary"] == result["summary"]
    assert saved["training"]["method"] == "full" and len(saved["training"]["loss_curve"]) == 3
    target = next(c for c in saved["comparisons"] if c["probe"] == "target")
    # Three steps at a high learning rate on reviews: held-out review perplexity must drop.
    assert target["after"] < target["before"]
    assert saved["base"]["model"]["fingerprint"] != saved["tuned"]["model"]["fingerprint"]
    held_out = (tmp_path / "demo" / "data" / "sst2_heldout.jsonl").read_text().splitlines()
    assert len(held_out) == demo.HELD_OUT and "Sentiment:" in held_out[0]
