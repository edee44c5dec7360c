"""Cost of the per-stage diagnostics (drift, importance, interference) on a real fine-tune.

Trains SmolLM2-135M (fp32, CPU) as `examples/sst2-guard.yaml` does (plain full fine-tuning on SST-2 reviews,
batch 8, max_length 128, lr 1e-4) for `--steps` steps through `finetune`, with the run's default diagnostics and the
kept texts `forgetless run` uses when a config has no `keep` (the quick suite's LAMBADA passages). Each configuration
runs in its own subprocess so its peak RSS (`ru_maxrss`) is its own:

- `off`: no diagnostics (the reference);
- `files`: every diagnostic on, theta_0 read back from the model's safetensors folder (what `forgetless run` does);
- `snapshot`: the same with theta_0 kept as a copy in RAM (what happens when the start is not on disk);
- `no-interference`, `no-importance`: `files` without that diagnostic, to tell which one raises the peak memory.

Step times come from a callback placed before the diagnostics' (on_step_begin -> on_step_end), so they exclude the
interference points; the diagnostics time themselves. Prints one JSON line per configuration; writes
bench/results/diagnostics_cost.json.

    .venv/bin/python bench/diagnostics_cost.py                  # ~6 min on 2 idle cores
    .venv/bin/python bench/diagnostics_cost.py --steps 3 --configs off,files   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child(name: str, steps: int) -> dict:
    import tempfile

    import torch
    from transformers import TrainerCallback

    from forgetless.config.run import DiagnosticsConfig, load_run_config
    from forgetless.diagnostics.stage import stage_diagnostics, start_folder
    from forgetless.methods import TrainContext
    from forgetless.models.loading import load_model
    from forgetless.suites import load_suite
    from forgetless.train.data import load_examples
    from forgetless.train.finetune import FinetuneSettings, finetune

    config, methods = load_run_config(ROOT / "examples" / "sst2-guard.yaml")
    lm = load_model(config.model, device="cpu")
    train, _ = load_examples(config.stages[0].data, lm.tokenizer, ROOT / "examples", "sst2")
    context = TrainContext(tokenizer=lm.tokenizer, seed=0)
    step_times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
            step_times.append(time.perf_counter() - self.began)

    callbacks: list = [Timer()]
    diag = None
    if name != "off":
        folder = None if name == "snapshot" else start_folder(lm.model, None)
        off = {"no-interference": {"interference": False}, "no-importance": {"importance": False}}.get(name, {})
        diag = stage_diagnostics(DiagnosticsConfig(**off), context, train, load_suite("quick").probes, folder, None)
        callbacks.append(diag)
    t = config.training
    settings = FinetuneSettings(steps=steps, learning_rate=t.learning_rate, batch_size=t.batch_size, max_length=128)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        model, _ = finetune(lm.model, lm.tokenizer, train, Path(out), settings, methods, context, callbacks=callbacks)
    train_seconds = time.perf_counter() - began
    report = diag.report(model) if diag else {}
    result = {
        "config": name,
        "steps": steps,
        "median_step_s": statistics.median(step_times[1:] or step_times),
        "train_wall_s": train_seconds,  # finetune() end to end: importance at the start and points included
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
    }
    if report:
        imp, inter, drift = report.get("importance"), report.get("interference"), report["drift"]
        if imp:
            result |= {
                "importance_s": imp["seconds"],
                "importance_kept_s": imp["kept"]["seconds"],
                "importance_new_s": imp["new"]["seconds"],
            }
        if inter:
            result |= {
                "interference_s": inter["seconds"],
                "interference_points": [p["step"] for p in inter["points"]],
                "point_s": [round(p["seconds"], 2) for p in inter["points"]],
            }
        result |= {
            "drift_s": drift["seconds"],
            "drift_start": drift["start"],
            "drift_memory_mib": drift["memory_mib"],
            "diagnostics_json_kib": len(json.dumps(report)) / 1024,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--configs", default="off,files,snapshot")
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return
    results = []
    for name in args.configs.split(","):
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--steps", str(args.steps)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["load_before"], result["load_after"] = load, os.getloadavg()[0]
        results.append(result)
        print(json.dumps(result), flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "diagnostics_cost.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
