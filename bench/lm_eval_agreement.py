"""Do forgetless's `choice` and `perplexity` probes give lm-evaluation-harness's numbers?

For each probe of the built-in `general` suite, the exact records forgetless samples
(`load_records` + `select_items` with the probe's limit and seed) are written to a JSONL file and
scored twice with the same model (the packaged SmolLM2-135M, fp32, CPU): by lm-eval 0.4.13's `hf`
model through a local task YAML that uses lm-eval's own prompt definitions (hellaswag and
winogrande load lm-eval's own `utils.py` / `preprocess_winogrande.py`, copied beside the YAML), and
by forgetless (`probe.prepare` + `probe.score`). Compared per item: the (context, continuation)
strings, log-likelihoods (max |delta|), predicted choice, acc / acc_norm; for perplexity the
per-document log-likelihood, bits per byte and token perplexity. Also wall time of the scoring
(model loading is timed separately, once per tool).

Run (about 10 minutes on 2 CPU cores):
    .venv/bin/python bench/lm_eval_agreement.py            # then see bench/RESULTS.md
    .venv/bin/python bench/lm_eval_agreement.py --limit 10 # quick check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
try:
    import lm_eval
    import lm_eval.evaluator
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
except ImportError as error:
    sys.exit(f"error: lm-evaluation-harness is not importable ({error}); install it: pip install lm-eval==0.4.13")

import numpy as np

from forgetless.data import load_records, select_items
from forgetless.models import load_model
from forgetless.models.default import default_model_folder
from forgetless.probes import ScoreOptions
from forgetless.probes.templates import render
from forgetless.suites import load_suite

LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"
ARC = {"doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_choice": "{{choices.text}}",
       "doc_to_target": "{{choices.label.index(answerKey)}}"}
# lm-eval's task definitions (tasks/<name>/*.yaml); "!" marks a `!function` from a copied lm-eval file.
TASKS = {
    "arc_easy": ARC, "arc_challenge": ARC,
    "hellaswag": {"process_docs": "!lm_eval_hellaswag.process_docs", "doc_to_text": "{{query}}",
                  "doc_to_target": "{{label}}", "doc_to_choice": "choices"},
    "winogrande": {"doc_to_text": "!lm_eval_winogrande.doc_to_text", "doc_to_target": "!lm_eval_winogrande.doc_to_target",
                   "doc_to_choice": "!lm_eval_winogrande.doc_to_choice"},
    "boolq": {"doc_to_text": "{{passage}}\nQuestion: {{question}}?\nAnswer:", "doc_to_target": "label",
              "doc_to_choice": ["no", "yes"]},  # super_glue/boolq's int `label` = packaged bool `answer`
    "piqa": {"doc_to_text": "Question: {{goal}}\nAnswer:", "doc_to_target": "label", "doc_to_choice": "{{[sol1, sol2]}}"},
}
COPIED = {"lm_eval_hellaswag.py": "hellaswag/utils.py", "lm_eval_winogrande.py": "winogrande/preprocess_winogrande.py"}
CHOICE_METRICS = ["acc", "acc_norm"]
PPL_METRICS = ["word_perplexity", "byte_perplexity", "bits_per_byte"]
HEADING = "## Probe agreement with lm-evaluation-harness"


def write_task(tmp: Path, name: str, records: list[dict], fields: dict, output_type: str, metrics: list[str]) -> str:
    data = tmp / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    lines = [f"task: fl_{name}", "dataset_path: json", f"dataset_kwargs: {{data_files: {{validation: {json.dumps(str(data))}}}}}",
             "validation_split: validation", f"output_type: {output_type}"]
    for key, value in fields.items():
        fn = isinstance(value, str) and value.startswith("!")
        lines.append(f"{key}: !function {value[1:]}" if fn else f"{key}: {json.dumps(value)}")
    lines.append("metric_list:")
    lines += [f"  - {{metric: {m}" + (", aggregation: mean, higher_is_better: true}" if m.startswith("acc") else "}")
              for m in metrics]  # perplexity metrics: lm-eval's default aggregations (as in wikitext.yaml)
    (tmp / f"fl_{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"fl_{name}"


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def run_both(probe, task: str, tm: TaskManager, hflm, flm, args) -> tuple[dict, list[dict], dict, object, dict]:
    """Score with lm-eval, then forgetless, `--repeats` times; keep the fastest wall and CPU time of each
    (the machine is shared, so the minimum is the least disturbed measurement)."""
    times: dict[str, list[float]] = {k: [] for k in ("lm_eval_s", "lm_eval_cpu_s", "forgetless_s", "forgetless_cpu_s")}
    for _ in range(args.repeats):
        out, wall, cpu = timed(lambda: lm_eval.simple_evaluate(
            model=hflm, tasks=[task], task_manager=tm, device="cpu", batch_size=args.batch_size,
            log_samples=True, bootstrap_iters=0))
        times["lm_eval_s"].append(wall)
        times["lm_eval_cpu_s"].append(cpu)

        def forgetless():
            prepared = probe.prepare(flm.tokenizer)
            return prepared, probe.score(flm, prepared, ScoreOptions(batch_tokens=args.batch_tokens))

        (prepared, result), wall, cpu = timed(forgetless)
        times["forgetless_s"].append(wall)
        times["forgetless_cpu_s"].append(cpu)
    timing = {**{k: min(v) for k, v in times.items()}, "all_times": times}
    return out["results"][task], sorted(out["samples"][task], key=lambda x: x["doc_id"]), prepared, result, timing


def setup_choice(probe, tmp: Path) -> str:
    cfg = probe.config
    if cfg.name not in TASKS:
        sys.exit(f"error: no lm-eval task definition for probe '{cfg.name}' (known: {', '.join(TASKS)})")
    data = load_records(cfg.source, probe.base_dir)
    records = [dict(data[i]) for i in select_items(len(data), cfg.limit, cfg.seed)]
    if cfg.name == "boolq":
        records = [{**r, "label": int(r["answer"])} for r in records]
    return write_task(tmp, cfg.name, records, TASKS[cfg.name], "multiple_choice", CHOICE_METRICS)


def compare_choice(probe, task: str, tm, hflm, flm, args) -> dict:
    cfg = probe.config
    agg, samples, prepared, result, timing = run_both(probe, task, tm, hflm, flm, args)
    items = prepared["items"]
    if len(samples) != len(items):
        sys.exit(f"error: {cfg.name}: lm-eval scored {len(samples)} docs, forgetless {len(items)} items")
    same_prompts = sum([tuple(a) for a in s["arguments"]] == [tuple(r) for r in it.requests] for s, it in zip(samples, items))
    diffs, pred_diff, norm_diff = [], 0, 0
    for s, it, fl_lls in zip(samples, items, result.items["lls"]):
        le = np.array([r[0] for r in s["filtered_resps"]])
        fl = np.array(fl_lls)
        diffs.append(float(np.abs(le - fl).max()) if le.shape == fl.shape else math.inf)
        pred_diff += int(np.argmax(le) != np.argmax(fl))
        chars = np.array([len(t) for t in it.lengths], dtype=float)
        norm_diff += int(np.argmax(le / chars) != np.argmax(fl / chars))
    return {
        "probe": cfg.name, "kind": "choice", "items": len(items), "same_prompts": same_prompts,
        **{f"{m}_lm_eval": agg[f"{m},none"] for m in CHOICE_METRICS},
        **{f"{m}_forgetless": result.metrics[m].value for m in CHOICE_METRICS},
        "items_acc_pred_differs": pred_diff, "items_acc_norm_pred_differs": norm_diff,
        "max_abs_dloglik": max(diffs), **timing,
    }


def setup_perplexity(probe, tmp: Path) -> str:
    cfg = probe.config
    data = load_records(cfg.source, probe.base_dir)
    texts = [render(cfg.text, data[i], native=False, where=cfg.name) for i in select_items(len(data), cfg.limit, cfg.seed)]
    texts = [t for t in texts if t.strip()]  # forgetless drops empty documents too
    fields = {"doc_to_text": "", "doc_to_target": "{{text}}"}
    return write_task(tmp, cfg.name, [{"text": t} for t in texts], fields, "loglikelihood_rolling", PPL_METRICS)


def compare_perplexity(probe, task: str, tm, hflm, flm, args) -> dict:
    cfg = probe.config
    agg, samples, prepared, result, timing = run_both(probe, task, tm, hflm, flm, args)
    le_ll = np.array([float(np.ravel(s["filtered_resps"])[0]) for s in samples])
    fl_nll = np.array(result.items["nll"])
    tokens = np.array(result.items["tokens"])
    texts = [s["arguments"][0][0] for s in samples]  # the text lm-eval scored, tokenized as forgetless does
    same = sum(flm.tokenizer.encode(t, add_special_tokens=False) == d for t, d in zip(texts, prepared["docs"]))
    return {
        "probe": cfg.name, "kind": "perplexity", "items": len(fl_nll),
        "same_prompts": same,
        **{f"{m}_lm_eval": agg[f"{m},none"] for m in PPL_METRICS},
        "bits_per_byte_forgetless": result.metrics["bits_per_byte"].value,
        "token_perplexity_lm_eval": float(np.exp(-le_ll.sum() / tokens.sum())),  # forgetless's token counts
        "token_perplexity_forgetless": result.metrics["perplexity"].value,
        "max_abs_dloglik": float(np.abs(le_ll + fl_nll).max()), **timing,
    }


TOLERANCE = 1e-3  # |delta loglik| allowed for fp32 batching/padding noise


def disagreements(r: dict) -> list[str]:
    bad = [f"{r['items'] - r['same_prompts']} items with different prompts"] if r["same_prompts"] != r["items"] else []
    if r["max_abs_dloglik"] > TOLERANCE:
        bad.append(f"max |delta loglik| {r['max_abs_dloglik']:.3g} > {TOLERANCE}")
    if r["kind"] == "choice":
        bad += [f"{r[f'items_{m}_pred_differs']} items with a different {m} prediction"
                for m in CHOICE_METRICS if r[f"items_{m}_pred_differs"]]
        bad += [f"{m} {r[f'{m}_lm_eval']:.4f} vs {r[f'{m}_forgetless']:.4f}"
                for m in CHOICE_METRICS if abs(r[f"{m}_lm_eval"] - r[f"{m}_forgetless"]) > 1e-9]
    elif abs(r["bits_per_byte_lm_eval"] / r["bits_per_byte_forgetless"] - 1) > 1e-5:
        bad.append(f"bits per byte {r['bits_per_byte_lm_eval']:.5f} vs {r['bits_per_byte_forgetless']:.5f}")
    return [f"{r['probe']}: {b}" for b in bad]


def table(rows: list[dict]) -> str:
    head = ["probe", "items", "same prompts", "acc lm-eval / forgetless", "acc_norm lm-eval / forgetless",
            "items predicted differently (acc / acc_norm)", "max abs dloglik", "lm-eval s (CPU s)",
            "forgetless s (CPU s)", "ratio"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["kind"] == "choice":
            acc, norm = (f"{r[f'{m}_lm_eval']:.4f} / {r[f'{m}_forgetless']:.4f}" for m in CHOICE_METRICS)
            pred = f"{r['items_acc_pred_differs']} / {r['items_acc_norm_pred_differs']}"
        else:
            acc = f"bits/byte {r['bits_per_byte_lm_eval']:.6f} / {r['bits_per_byte_forgetless']:.6f}"
            norm = f"token ppl {r['token_perplexity_lm_eval']:.4f} / {r['token_perplexity_forgetless']:.4f}"
            pred = f"n/a (lm-eval word ppl {r['word_perplexity_lm_eval']:.3f})"
        out.append(f"| {r['probe']} | {r['items']} | {r['same_prompts']}/{r['items']} | {acc} | {norm} | {pred} | "
                   f"{r['max_abs_dloglik']:.1e} | {r['lm_eval_s']:.1f} ({r['lm_eval_cpu_s']:.0f}) | "
                   f"{r['forgetless_s']:.1f} ({r['forgetless_cpu_s']:.0f}) | {r['lm_eval_s'] / r['forgetless_s']:.2f}x |")
    return "\n".join(out)


def section(rows: list[dict], meta: dict, bad: list[str]) -> str:
    verdict = ("**Disagreements:**\n" + "\n".join(f"- {b}" for b in bad)) if bad else (
        f"**Verdict: agree.** Same prompts, same predictions, log-likelihoods within {TOLERANCE} on every item.")
    return f"""{HEADING}

Command: `{meta['command']}` ({meta['date']}; {meta['cpu']}, {meta['cores']} CPU cores, no GPU,
torch {meta['torch']} with {meta['torch_threads']} threads; lm-eval {meta['lm_eval_version']}; model: the packaged
SmolLM2-135M-Instruct GGUF dequantized to fp32, `forgetless.models.default.default_model_folder()`, opened by
lm-eval's `hf` model with `dtype=float32` and by `forgetless.models.load_model`).

Both tools score the records forgetless samples (`load_records` + `select_items`, the suite's limit and seed;
`lambada_ppl` capped at {meta['ppl_limit']} documents), written to JSONL and read by a local lm-eval task YAML
with lm-eval's own prompt definitions: arc_easy and boolq as Jinja templates from lm-eval's task YAMLs (boolq gets
`label = int(answer)`, as the packaged copy is google/boolq and lm-eval reads super_glue's `label`); hellaswag
runs lm-eval's own `process_docs` and winogrande its own `doc_to_text`/`doc_to_choice`/`doc_to_target`
(the harness's `hellaswag/utils.py` and `winogrande/preprocess_winogrande.py`, copied beside the YAML), not
pre-rendered fields; lambada_ppl is a `loglikelihood_rolling` task on the text forgetless scores.
"same prompts" counts items whose (context, continuation) strings are identical in both tools (for
perplexity: lm-eval's document text tokenizes to forgetless's tokens). Token perplexity for lm-eval is
exp(-sum loglik / sum tokens) with its per-document log-likelihoods and forgetless's token counts.

Batch sizes: lm-eval `batch_size={meta['lm_eval_batch_size']}`; forgetless `batch_tokens={meta['forgetless_batch_tokens']}`
(at most 64 rows a batch; identical inputs scored once; logits computed only at continuation positions).
Seconds are wall time, the fastest of {meta['repeats']} alternating runs per tool (CPU seconds in brackets), and
include building the requests (data loading, templating, tokenization) and scoring, not model loading (once:
lm-eval {meta['lm_eval_load_s']:.1f} s, forgetless {meta['forgetless_load_s']:.1f} s). lm-eval runs with
`bootstrap_iters=0` so no stderr bootstrap is timed. The machine is shared with other jobs, so timings are noisy;
the agreement columns are exact.

{table(rows)}

{verdict}
"""


def refresh(path: Path, text: str) -> None:
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    if HEADING in old:
        begin = old.index(HEADING)
        end = old.find("\n## ", begin + len(HEADING))
        old = old[:begin] + (old[end + 1 :] if end >= 0 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", default="arc_easy,hellaswag,winogrande,boolq", help="choice probes of the general suite")
    parser.add_argument("--limit", type=int, help="items per probe (default: the suite's limits)")
    parser.add_argument("--ppl-probe", default="lambada_ppl", help="perplexity probe ('' to skip)")
    parser.add_argument("--ppl-limit", type=int, default=100, help="documents for the perplexity probe (--limit wins)")
    parser.add_argument("--batch-size", type=int, default=16, help="lm-eval batch size")
    parser.add_argument("--batch-tokens", type=int, default=ScoreOptions.batch_tokens, help="forgetless batch budget")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per tool and probe (fastest kept)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/lm_eval_agreement.json"))
    parser.add_argument("--markdown", type=Path, default=Path("bench/RESULTS.md"), help="section to refresh ('' skips)")
    args = parser.parse_args()
    if lm_eval.__version__ != "0.4.13":
        print(f"warning: lm-eval {lm_eval.__version__} installed; this comparison was written for 0.4.13")
    lm_eval.evaluator.get_git_commit_hash = lambda: None  # lm-eval would shell out to `git describe`

    suite = load_suite("general")
    names = [n for n in args.probes.split(",") if n] + ([args.ppl_probe] if args.ppl_probe else [])
    probes = []
    for name in names:
        probe = suite.probe(name)
        limit = args.limit or (args.ppl_limit if probe.config.kind == "perplexity" else probe.config.limit)
        probes.append(type(probe)(probe.config.model_copy(update={"limit": limit}), probe.base_dir))

    folder = default_model_folder()
    start = time.perf_counter()
    hflm = HFLM(pretrained=str(folder), dtype="float32", device="cpu", batch_size=args.batch_size)
    load = {"lm_eval_load_s": time.perf_counter() - start}
    start = time.perf_counter()
    flm = load_model("smollm2-135m", device="cpu")
    load["forgetless_load_s"] = time.perf_counter() - start
    rows = []
    with tempfile.TemporaryDirectory(prefix="fl-lm-eval-") as tmp_name:
        tmp = Path(tmp_name)
        for target, source in COPIED.items():
            shutil.copy(LM_EVAL_TASKS / source, tmp / target)
        kinds = [probe.config.kind == "perplexity" for probe in probes]
        tasks = [(setup_perplexity if ppl else setup_choice)(p, tmp) for p, ppl in zip(probes, kinds)]
        tm = TaskManager(include_path=str(tmp))  # indexes the YAMLs present now
        for probe, task, ppl in zip(probes, tasks, kinds):
            rows.append((compare_perplexity if ppl else compare_choice)(probe, task, tm, hflm, flm, args))
            print(json.dumps(rows[-1]), flush=True)
    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    meta = {"date": date.today().isoformat(), "command": " ".join([".venv/bin/python", *sys.argv]), "cpu": cpu,
            "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "lm_eval_version": lm_eval.__version__, "model": str(folder), "lm_eval_batch_size": args.batch_size,
            "forgetless_batch_tokens": args.batch_tokens, "repeats": args.repeats, "ppl_limit": args.limit or args.ppl_limit,
            **load}
    bad = [b for r in rows for b in disagreements(r)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "disagreements": bad}, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        refresh(args.markdown, section(rows, meta, bad))
    print(f"\n{table(rows)}\n\nmodel load: lm-eval {load['lm_eval_load_s']:.1f} s, forgetless "
          f"{load['forgetless_load_s']:.1f} s; wrote {args.out}" + (f" and {args.markdown}" if args.markdown else ""))
    if bad:
        sys.exit("DISAGREEMENT between lm-eval and forgetless:\n  " + "\n  ".join(bad))
    print("agree: same prompts, same predictions, log-likelihoods within", TOLERANCE)


if __name__ == "__main__":
    main()
