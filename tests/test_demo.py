"""The demo pipeline end to end with the tiny model in place of SmolLM2 (the real data is used)."""

from __future__ import annotations

import json

import pytest

from forgetless.errors import ConfigError
from forgetless.pipeline import demo
from forgetless.train.finetune import FinetuneSettings


@pytest.fixture
def tiny_demo(tiny_model, tiny_suite, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setattr(demo, "BASE_MODEL", str(tiny_model))
    settings = FinetuneSettings(steps=3, learning_rate=1e-2, batch_size=4, max_length=32)
    monkeypatch.setitem(demo.PRESETS, "quick", demo.DemoPreset(str(tiny_suite), settings))


def test_demo_compares_methods_from_the_same_base(tiny_demo, tmp_path) -> None:  # noqa: ANN001
    result = demo.run_demo(quick=True, out=tmp_path / "demo", methods=["full", "expand", "replay"])
    assert list(result["methods"]) == ["full", "expand", "replay"]
    saved = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert saved["schema"] == "forgetless.demo/1"
    for name in ("full", "replay"):
        audit = json.loads((tmp_path / "demo" / name / "audit.json").read_text())
        assert (tmp_path / "demo" / name / "model" / "model.safetensors").is_file()
        target = next(c for c in audit["comparisons"] if c["probe"] == "target")
        # Three steps at a high learning rate on reviews: held-out review perplexity must drop.
        assert target["after"] < target["before"]
        assert len(audit["training"]["loss_curve"]) == 3
    full, replay = (result["methods"][n] for n in ("full", "replay"))
    # Both start from the same base: identical "before" numbers, different "after" numbers.
    assert full["base"]["probes"] == replay["base"]["probes"]
    assert full["tuned"]["model"]["fingerprint"] != replay["tuned"]["model"]["fingerprint"]
    markdown = (tmp_path / "demo" / "demo.md").read_text()
    assert "| full | target (target) | perplexity |" in markdown and "| replay |" in markdown
    held_out = (tmp_path / "demo" / "data" / "sst2_heldout.jsonl").read_text().splitlines()
    assert len(held_out) == demo.HELD_OUT and "Sentiment:" in held_out[0]
    # The report opens with the methods' frontier; each method has its own audit report.
    frontier = json.loads((tmp_path / "demo" / "compare.json").read_text())
    assert [e["label"] for e in frontier["entries"]] == ["full", "expand", "replay"]
    assert frontier["budget"] == demo.DEMO_BUDGET
    # expand inserts blocks into its own copy: the recipe after it starts from the unexpanded base.
    layers = {
        n: json.loads((tmp_path / "demo" / n / "model" / "config.json").read_text())["num_hidden_layers"]
        for n in result["methods"]
    }
    assert layers["expand"] == layers["full"] + 2 and layers["replay"] == layers["full"]
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "Frontier" in page
    # Both open with the generation changes (the tiny suite's canaries), before the frontier and the table.
    assert page.index("What changed in the generations") < page.index("Frontier")
    assert markdown.index("## What changed in the generations\n\n- **full**: ") < markdown.index("| full |")
    assert all((tmp_path / "demo" / name / "report.html").is_file() for name in ("full", "replay"))


def test_keep_texts_avoid_the_scored_passages() -> None:
    """Replayed prose must not be the prose the suite scores, or replay would game the probe."""
    from forgetless.data.sources import load_records, select_items
    from forgetless.suites import load_suite

    suite = load_suite("quick")
    keep = demo.keep_texts(suite)
    probe = suite.probe("lambada_ppl").config
    records = load_records([demo.LAMBADA])
    scored = {
        records[i]["request"]["context"] + records[i]["request"]["continuation"]
        for i in select_items(len(records), probe.limit, probe.seed)
    }
    assert len(keep) == demo.KEEP and len(scored) == probe.limit
    assert not scored & set(keep)


def test_unknown_demo_method(tiny_demo, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="unknown demo method"):
        demo.run_demo(quick=True, out=tmp_path, methods=["ful"])


def test_demo_runs_every_recipe_and_repairs_full(tiny_demo, tmp_path) -> None:  # noqa: ANN001
    result = demo.run_demo(quick=True, out=tmp_path / "demo", methods=["full", "ewc", "lora", "repair"], seed=1)
    assert list(result["methods"]) == ["full", "ewc", "lora", "repair"]
    assert result["settings"]["seed"] == 1 and result["recipes"]["lora"]["learning_rate"] == 5e-4
    lora = result["methods"]["lora"]
    assert lora["training"]["learning_rate"] == 5e-4  # the recipe's own rate, not the preset's
    # LoRA is merged before saving: a plain model folder, different weights from the base.
    assert (tmp_path / "demo" / "lora" / "model" / "model.safetensors").is_file()
    assert lora["tuned"]["model"]["fingerprint"] != lora["base"]["model"]["fingerprint"]
    repaired = json.loads((tmp_path / "demo" / "repair" / "repair.json").read_text())
    alpha = repaired["chosen_alpha"]
    assert result["repair"]["chosen_alpha"] == alpha and 0 <= alpha <= 1
    # The repair row's audit is the interpolated model at the chosen alpha, shown within the demo's budget
    # (alpha 0, the base, when no alpha > 0 was).
    point = next(p for p in repaired["curve"] if p["alpha"] == alpha)
    assert point["status"] == repaired["status"] == "within" and repaired["budget"] == demo.DEMO_BUDGET
    assert result["methods"]["repair"]["training"]["repair"] == {"of": "full", "alpha": alpha}
    frontier = json.loads((tmp_path / "demo" / "compare.json").read_text())
    assert [e["label"] for e in frontier["entries"]] == ["full", "ewc", "lora", "repair"]
    assert "alpha" in (tmp_path / "demo" / "repair" / "report.html").read_text()
    assert set(result["seconds"]) == {"base", "full", "ewc", "lora", "repair", "total"}


def test_repair_needs_full(tiny_demo, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="add full"):
        demo.run_demo(quick=True, out=tmp_path, methods=["l2sp", "repair"])


def test_demo_suites_score_free_continuations_with_the_reviews_template_as_leak_markers() -> None:
    """Issue 15: the fine-tune's collapse into its review format shows in free continuations, so both presets
    score them, and every generation probe counts the SST-2 template's lines in its generations."""
    assert demo.MARKERS == ["Review:", "Sentiment:"]
    assert all(m in demo.sst2_texts()[0] for m in demo.MARKERS)  # the markers are what the reviews repeat
    for preset, items in (("full", 100), ("quick", 32)):
        suite = demo.preset_suite(demo.PRESETS[preset])
        generation = [p.config for p in suite.probes if p.config.kind == "generation"]
        assert [c.limit for c in generation if c.answer is None] == [items], preset
        assert all(c.leak == demo.MARKERS for c in generation), preset
    assert any(p.config.kind == "canary" for p in demo.preset_suite(demo.PRESETS["full"]).probes)
