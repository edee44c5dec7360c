"""Do forgetless's `choice` and `perplexity` probes give lm-evaluation-harness's numbers, and how fast?

For each probe of the built-in `general` suite, the records forgetless samples (`load_records` +
`select_items`, the probe's limit and seed) go to a JSONL file that a local lm-eval 0.4.13 task YAML
reads with lm-eval's own prompt definitions (hellaswag and winogrande run the harness's own
`utils.py` / `preprocess_winogrande.py`, copied beside the YAML). The same model (the packaged
SmolLM2-135M, fp32, CPU) is scored by lm-eval's `hf` model and by forgetless (`probe.prepare` +
`probe.score`). Compared per item: prompt strings, log-likelihoods, predicted choice, acc and
acc_norm; for perplexity, per-document log-likelihood, bits per byte and token perplexity. Also the
wall and CPU time of each tool (fastest of --repeats runs; model loading timed once, separately).
Writes a JSON file and refreshes the section in bench/RESULTS.md; exits 1 on any disagreement.

    .venv/bin/python bench/lm_eval_agreement.py                                # ~15 min on 2 cores
    .venv/bin/python bench/lm_eval_agreement.py --limit 10 --repeats 1 --markdown ''   # quick check
"""

from __future__ import annotations

import argparse
import json
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
import torch

from forgetless.data import load_records, select_items
from forgetless.models import load_model
from forgetless.models.default import default_model_folder
from forgetless.probes import ScoreOptions
from forgetless.probes.templates import render
from forgetless.suites import load_suite

ARC = {"doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_choice": "{{choices.text}}",
       "doc_to_target": "{{choices.label.index(answerKey)}}"}
WINO = "!lm_eval_winogrande."
TASKS = {  # lm-eval's definitions (tasks/<name>/*.yaml); "!" marks a `!function` in a copied lm-eval file
    "arc_easy": ARC, "arc_challenge": ARC,
    "hellaswag": {"process_docs": "!lm_eval_hellaswag.process_docs", "doc_to_text": "{{query}}",
                  "doc_to_target": "{{label}}", "doc_to_choice": "choices"},
    "winogrande": {f"doc_to_{k}": WINO + f"doc_to_{k}" for k in ("text", "target", "choice")},
    "boolq": {"doc_to_text": "{{passage}}\nQuestion: {{question}}?\nAnswer:", "doc_to_target": "label",
              "doc_to_choice": ["no", "yes"]},  # `label` = int(answer) is added to each record
    "piqa": {"doc_to_text": "Question: {{goal}}\nAnswer:", "doc_to_target": "label", "doc_to_choice": "{{[sol1, sol2]}}"},
}
COPIED = {"lm_eval_hellaswag.py": "hellaswag/utils.py", "lm_eval_winogrande.py": "winogrande/preprocess_winogrande.py"}
CHOICE, PPL = ["acc", "acc_norm"], ["word_perplexity", "byte_perplexity", "bits_per_byte"]
HEADING = "## Probe agreement with lm-evaluation-harness"
TOLERANCE = 1e-3  # |delta loglik| allowed for fp32 batching and padding noise


def write_task(tmp: Path, probe, output_type: str, metrics: list[str], fields: dict, records: list[dict]) -> str:
    name = probe.config.name
    (tmp / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    lines = [f"task: fl_{name}", "dataset_path: json", "validation_split: validation", f"output_type: {output_type}",
             f"dataset_kwargs: {{data_files: {{validation: {json.dumps(str(tmp / f'{name}.jsonl'))}}}}}"]
    for key, value in fields.items():
        fn = isinstance(value, str) and value.startswith("!")
        lines.append(f"{key}: !function {value[1:]}" if fn else f"{key}: {json.dumps(value)}")
    # acc/acc_norm as lm-eval's task YAMLs; perplexity metrics take lm-eval's defaults (as in wikitext.yaml)
    lines += ["metric_list:"] + [f"  - {{metric: {m}{', aggregation: mean, higher_is_better: true' * (m in CHOICE)}}}"
                                 for m in metrics]
    (tmp / f"fl_{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"fl_{name}"


def setup(probe, tmp: Path) -> str:
    cfg = probe.config
    data = load_records(cfg.source, probe.base_dir)
    picked = [data[i] for i in select_items(len(data), cfg.limit, cfg.seed)]
    if cfg.kind == "perplexity":  # the text forgetless scores; it drops empty documents
        texts = [render(cfg.text, r, native=False, where=cfg.name) for r in picked]
        records = [{"text": t} for t in texts if t.strip()]
        return write_task(tmp, probe, "loglikelihood_rolling", PPL, {"doc_to_text": "", "doc_to_target": "{{text}}"}, records)
    if cfg.name not in TASKS:
        sys.exit(f"error: no lm-eval task definition for probe '{cfg.name}' (known: {', '.join(TASKS)})")
    if cfg.name == "boolq":  # the packaged copy is google/boolq (bool `answer`); lm-eval reads super_glue's `label`
        picked = [{**r, "label": int(r["answer"])} for r in picked]
    return write_task(tmp, probe, "multiple_choice", CHOICE, TASKS[cfg.name], picked)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def compare(probe, task: str, tm: TaskManager, hflm, flm, args) -> dict:
    """Score with lm-eval, then forgetless, --repeats times; keep each tool's fastest wall and CPU time
    (the machine is shared: the minimum is the least disturbed run)."""
    times: dict[str, list[float]] = {k: [] for k in ("lm_eval_s", "lm_eval_cpu_s", "forgetless_s", "forgetless_cpu_s")}

    def forgetless():
        prepared = probe.prepare(flm.tokenizer)
        return prepared, probe.score(flm, prepared, ScoreOptions(batch_tokens=args.batch_tokens))

    for _ in range(args.repeats):
        out, wall, cpu = timed(lambda: lm_eval.simple_evaluate(
            model=hflm, tasks=[task], task_manager=tm, device="cpu", batch_size=args.batch_size,
            log_samples=True, bootstrap_iters=0))
        times["lm_eval_s"].append(wall)
        times["lm_eval_cpu_s"].append(cpu)
        (prepared, result), wall, cpu = timed(forgetless)
        times["forgetless_s"].append(wall)
        times["forgetless_cpu_s"].append(cpu)
    agg, samples = out["results"][task], sorted(out["samples"][task], key=lambda x: x["doc_id"])
    row = {"probe": probe.config.name, "kind": probe.config.kind, "items": result.n_items,
           **{k: min(v) for k, v in times.items()}, "all_times": times}
    if len(samples) != result.n_items:
        sys.exit(f"error: {task}: lm-eval scored {len(samples)} documents, forgetless {result.n_items}")
    if probe.config.kind == "perplexity":
        le_ll, fl_nll = np.array([float(np.ravel(s["filtered_resps"])[0]) for s in samples]), np.array(result.items["nll"])
        tokens = np.array(result.items["tokens"])
        same = sum(flm.tokenizer.encode(s["arguments"][0][0], add_special_tokens=False) == d
                   for s, d in zip(samples, prepared["docs"], strict=True))  # lm-eval's text -> forgetless's tokens
        return {**row, "same_prompts": same, **{f"{m}_lm_eval": agg[f"{m},none"] for m in PPL},
                "bits_per_byte_forgetless": result.metrics["bits_per_byte"].value,
                "token_perplexity_lm_eval": float(np.exp(-le_ll.sum() / tokens.sum())),  # forgetless's token counts
                "token_perplexity_forgetless": result.metrics["perplexity"].value,
                "max_abs_dloglik": float(np.abs(le_ll + fl_nll).max())}
    row["same_prompts"] = row["items_acc_pred_differs"] = row["items_acc_norm_pred_differs"] = 0
    diffs = []
    for s, item, fl_lls in zip(samples, prepared["items"], result.items["lls"], strict=True):
        row["same_prompts"] += [tuple(a) for a in s["arguments"]] == [tuple(r) for r in item.requests]
        le, fl = np.array([r[0] for r in s["filtered_resps"]]), np.array(fl_lls)
        if le.shape != fl.shape:
            sys.exit(f"error: {task} doc {s['doc_id']}: lm-eval has {len(le)} choices, forgetless {len(fl)}")
        chars = np.array([len(t) for t in item.lengths], dtype=float)
        diffs.append(float(np.abs(le - fl).max()))
        row["items_acc_pred_differs"] += int(np.argmax(le) != np.argmax(fl))
        row["items_acc_norm_pred_differs"] += int(np.argmax(le / chars) != np.argmax(fl / chars))
    return {**row, **{f"{m}_lm_eval": agg[f"{m},none"] for m in CHOICE},
            **{f"{m}_forgetless": result.metrics[m].value for m in CHOICE}, "max_abs_dloglik": max(diffs)}


def disagreements(r: dict) -> list[str]:
    bad = [f"{r['items'] - r['same_prompts']} items with different prompts"] if r["same_prompts"] != r["items"] else []
    if r["max_abs_dloglik"] > TOLERANCE:
        bad.append(f"max |delta loglik| {r['max_abs_dloglik']:.3g} > {TOLERANCE}")
    if r["kind"] == "choice":
        bad += [f"{r[f'items_{m}_pred_differs']} items with a different {m} prediction"
                for m in CHOICE if r[f"items_{m}_pred_differs"]]
        bad += [f"{m} {r[f'{m}_lm_eval']:.4f} vs {r[f'{m}_forgetless']:.4f}"
                for m in CHOICE if abs(r[f"{m}_lm_eval"] - r[f"{m}_forgetless"]) > 1e-9]
    elif abs(r["bits_per_byte_lm_eval"] / r["bits_per_byte_forgetless"] - 1) > 1e-5:
        bad.append(f"bits per byte {r['bits_per_byte_lm_eval']:.6f} vs {r['bits_per_byte_forgetless']:.6f}")
    return [f"{r['probe']}: {b}" for b in bad]


def table(rows: list[dict]) -> str:
    head = ["probe", "items", "same prompts", "acc: lm-eval / forgetless", "acc_norm: lm-eval / forgetless",
            "items predicted differently (acc / acc_norm)", "max abs dloglik", "lm-eval s (CPU s)",
            "forgetless s (CPU s)", "lm-eval / forgetless time"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["kind"] == "choice":
            acc, norm = (f"{r[f'{m}_lm_eval']:.4f} / {r[f'{m}_forgetless']:.4f}" for m in CHOICE)
            pred = f"{r['items_acc_pred_differs']} / {r['items_acc_norm_pred_differs']}"
        else:
            acc = f"bits/byte {r['bits_per_byte_lm_eval']:.6f} / {r['bits_per_byte_forgetless']:.6f}"
            norm = f"token ppl {r['token_perplexity_lm_eval']:.4f} / {r['token_perplexity_forgetless']:.4f}"
            pred = f"n/a (lm-eval word ppl {r['word_perplexity_lm_eval']:.3f})"
        out.append(f"| {r['probe']} | {r['items']} | {r['same_prompts']}/{r['items']} | {acc} | {norm} | {pred} | "
                   f"{r['max_abs_dloglik']:.1e} | {r['lm_eval_s']:.1f} ({r['lm_eval_cpu_s']:.0f}) | "
                   f"{r['forgetless_s']:.1f} ({r['forgetless_cpu_s']:.0f}) | {r['lm_eval_s'] / r['forgetless_s']:.2f}x |")
    return "\n".join(out)


def section(rows: list[dict], m: dict, bad: list[str]) -> str:
    verdict = ("**Disagreements:**\n" + "\n".join(f"- {b}" for b in bad)) if bad else (
        f"**Agree:** same prompts and predictions on every item; log-likelihoods within {TOLERANCE}.")
    return f"""{HEADING}

`{m['command']}` ({m['date']}; {m['cpu']}, {m['cores']} CPU cores, no GPU; torch {m['torch']},
{m['torch_threads']} threads; lm-eval {m['lm_eval_version']}). Model: the packaged SmolLM2-135M-Instruct GGUF as an
fp32 folder (`default_model_folder()`), opened by lm-eval's `hf` model (`dtype=float32`) and by `load_model`.

Both tools score the records forgetless samples (suite limits and seeds; `lambada_ppl` {m['ppl_limit']} documents),
written to JSONL for a local lm-eval task YAML with lm-eval's own prompt definitions: ARC and BoolQ templates from
its task YAMLs (BoolQ gets `label = int(answer)`: the packaged copy is google/boolq, lm-eval reads super_glue);
HellaSwag through lm-eval's own `process_docs` and Winogrande through its own `doc_to_text/choice/target`
(the harness's `hellaswag/utils.py` and `winogrande/preprocess_winogrande.py`, not pre-rendered fields);
LAMBADA as a `loglikelihood_rolling` task on the text forgetless scores. "Same prompts": identical
(context, continuation) strings (perplexity: lm-eval's text tokenizes to forgetless's tokens). lm-eval's token
perplexity = exp(-sum loglik / sum tokens), its per-document log-likelihoods over forgetless's token counts.

Batch sizes: lm-eval `batch_size={m['lm_eval_batch_size']}`; forgetless `batch_tokens={m['forgetless_batch_tokens']}`
(at most 64 rows; identical inputs scored once; logits only at continuation positions). Seconds: wall time, fastest
of {m['repeats']} alternating runs per tool (CPU seconds in brackets), covering data loading, templating,
tokenization and scoring; lm-eval with `bootstrap_iters=0`. Model loading, once: lm-eval
{m['lm_eval_load_s']:.1f} s, forgetless {m['forgetless_load_s']:.1f} s. Other jobs share this machine, so times are
noisy; the agreement columns are exact.

{table(rows)}

{verdict}
"""


def refresh(path: Path, text: str) -> None:
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    if HEADING in old:
        begin, end = old.index(HEADING), old.find("\n## ", old.index(HEADING) + len(HEADING))
        old = old[:begin] + (old[end + 1 :] if end >= 0 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", default="arc_easy,hellaswag,winogrande,boolq", help="choice probes of `general`")
    parser.add_argument("--limit", type=int, help="items per probe (default: the suite's limits)")
    parser.add_argument("--ppl-probe", default="lambada_ppl", help="perplexity probe ('' skips)")
    parser.add_argument("--ppl-limit", type=int, default=100, help="its documents (--limit wins)")
    parser.add_argument("--batch-size", type=int, default=16, help="lm-eval batch size")
    parser.add_argument("--batch-tokens", type=int, default=ScoreOptions.batch_tokens, help="forgetless batch budget")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per tool and probe (fastest kept)")
    parser.add_argument("--out", default="bench/results/lm_eval_agreement.json")
    parser.add_argument("--markdown", default="bench/RESULTS.md", help="file whose section to refresh ('' skips)")
    args = parser.parse_args()
    if lm_eval.__version__ != "0.4.13":
        print(f"warning: lm-eval {lm_eval.__version__} is installed; this comparison was written for 0.4.13")
    lm_eval.evaluator.get_git_commit_hash = lambda: None  # it would shell out to `git describe`

    suite = load_suite("general")
    probes = []
    for name in [n for n in args.probes.split(",") if n] + [args.ppl_probe] * bool(args.ppl_probe):
        probe = suite.probe(name)
        limit = args.limit or (args.ppl_limit if probe.config.kind == "perplexity" else probe.config.limit)
        probes.append(type(probe)(probe.config.model_copy(update={"limit": limit}), probe.base_dir))
    folder = default_model_folder()
    hflm, lm_load, _ = timed(lambda: HFLM(pretrained=str(folder), dtype="float32", device="cpu",
                                          batch_size=args.batch_size))
    flm, fl_load, _ = timed(lambda: load_model("smollm2-135m", device="cpu"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="fl-lm-eval-") as tmp:
        for target, source in COPIED.items():
            shutil.copy(Path(lm_eval.__file__).parent / "tasks" / source, Path(tmp) / target)
        tasks = [setup(probe, Path(tmp)) for probe in probes]
        tm = TaskManager(include_path=tmp)  # indexes the YAMLs present now
        for probe, task in zip(probes, tasks, strict=True):
            rows.append(compare(probe, task, tm, hflm, flm, args))
            print(json.dumps(rows[-1]), flush=True)

    cpu = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln]
    meta = {"date": date.today().isoformat(), "command": " ".join([".venv/bin/python", *sys.argv]),
            "cpu": cpu[0] if cpu else "?", "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "lm_eval_version": lm_eval.__version__, "model": str(folder),
            "lm_eval_batch_size": args.batch_size, "forgetless_batch_tokens": args.batch_tokens,
            "repeats": args.repeats, "ppl_limit": args.limit or args.ppl_limit,
            "lm_eval_load_s": lm_load, "forgetless_load_s": fl_load}
    bad = [b for r in rows for b in disagreements(r)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows, "disagreements": bad}, indent=2) + "\n")
    if args.markdown:
        refresh(Path(args.markdown), section(rows, meta, bad))
    print(f"\n{table(rows)}\n\nmodel load: lm-eval {lm_load:.1f} s, forgetless {fl_load:.1f} s; wrote {args.out}"
          + (f" and {args.markdown}" if args.markdown else ""))
    if bad:
        sys.exit("DISAGREEMENT between lm-eval and forgetless:\n  " + "\n  ".join(bad))
    print(f"agree: same prompts and predictions; log-likelihoods within {TOLERANCE}")


if __name__ == "__main__":
    main()
