"""A user's own training script against `forgetless run`: ForgetGuard and ForgetPenalty('ewc') on real data (issue 13).

SmolLM2-135M (the packaged model, fp32, CPU) fine-tuned on SST-2 reviews (the packaged validation split,
examples/sst2-guard.yaml's template, the last `--limit` reviews, at most the example's 100, held out as the target)
with EWC (lam 1.0, its Fisher on the demo's kept texts: LAMBADA passages the suite does not score) under the
example's budget (lambada_ppl +10%, arc_easy_val<limit> -5 points), policy rollback, a check every 10 of 30 steps,
the quick suite's probes at `--limit` items:

(a) `forgetless run` on examples/sst2-guard.yaml changed to that (`methods: [{name: ewc, lam: 1.0}]`, a `keep:`
    file, `guard.every`, the diagnostics off, which do not change training), in a subprocess;
(b) the same training from a script: transformers.Trainer on the run's own tokenized data
    (`train.data.tokenize_examples` of the run's `load_examples`) and TrainingArguments
    (`train.finetune.training_arguments`), with `ForgetPenalty("ewc", lam=1.0, keep=<the run's keep texts>,
    max_length=<the run's max_length>)` and `ForgetGuard(<the run's suite file>, budget, "rollback", every,
    target=<the run's held-out file>)`. Compared step by step with (a): each check (step, each probe's value, each
    budget status), the guard's decision (action, step, restored step), `penalty/ewc` at every logged step, and
    the final weights (max |difference|, beside max |final - base|, how far training moved them);
(c) TRL's SFTTrainer on the same texts and settings (batch 8, lr 1e-4 constant, max_length 128, 30 steps, seed 0),
    plain and with ForgetGuard + ForgetPenalty('ewc'): seconds per training step, timed from `on_step_begin` to
    `on_step_end` by a callback that puts itself first (so the penalty's gradient, added at on_step_begin, is
    inside and the guard's checks, at on_step_end, are outside; the guard reports their time itself), and the
    guard's verdicts beside the run's (SFTTrainer tokenizes on its own, appending EOS, so its weights are not the
    run's and its verdicts may legitimately differ).

Each part scores probes through its own result cache, which holds only the base model's scores from (a) (the
cache is keyed by the weights' content, so each guard reads its baseline from it, as it would from a warm cache;
`--own-baselines` scores each baseline anew). No part reads another's checks: they are scored again. 10
scorings of the suite in all (4 in the run, 3 in each guarded script), about 30 s each on 2 quiet cores at the
quick suite's 100 items (bench/RESULTS.md, "Guard: a budget held on a real run"); 4 x 30 training steps of about 1 s;
3 Fisher estimates of about 30 s. Prints one JSON line per part on stdout (the trainers' own logs go to stderr)
and writes bench/results/script_vs_run.json; the table in bench/RESULTS.md is written by hand.

    .venv/bin/python bench/script_vs_run.py     # ~12 min on 2 quiet cores; several times that on busy ones
    OMP_NUM_THREADS=1 .venv/bin/python bench/script_vs_run.py --steps 2 --every 1 --limit 8 --json /tmp/svr.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

from forgetless.evaluation.results import guard_status, point_status
from forgetless.train.trainer_lookup import find_trainer, move_to_front

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "sst2-guard.yaml"
STAGE = "sst2"  # the example's stage: the run names its held-out probe stage_sst2, ForgetGuard names it target


# -- the setup ---------------------------------------------------------------------------------------


def write_suite(folder: Path, limit: int) -> Path:
    """The quick suite with every probe's item limit set to `limit`."""
    import forgetless.suites

    quick = yaml.safe_load((Path(forgetless.suites.__file__).parent / "quick.yaml").read_text(encoding="utf-8"))
    quick["name"] = f"quick-{limit}"
    for probe in quick["probes"]:
        probe["limit"] = limit
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(quick, sort_keys=False), encoding="utf-8")
    return path


def user_callbacks(inputs: dict, args: argparse.Namespace, cache: Path) -> tuple:
    """What a user adds to their trainer: ForgetPenalty('ewc') and a ForgetGuard with the run's settings."""
    import forgetless
    from forgetless.cache import ResultCache

    config, settings = inputs["config"], inputs["settings"]
    penalty = forgetless.ForgetPenalty("ewc", lam=args.lam, keep=inputs["keep"], max_length=settings.max_length)
    guard = forgetless.ForgetGuard(
        config.suite,
        budget=config.guard.budget,
        policy=config.guard.policy,
        every=config.guard.every,
        target=inputs["held"],
        cache=ResultCache(cache),
    )
    return penalty, guard


def write_config(folder: Path, args: argparse.Namespace) -> Path:
    """examples/sst2-guard.yaml, changed as the docstring says."""
    from forgetless.pipeline.demo import keep_texts
    from forgetless.suites import load_suite

    suite = write_suite(folder, args.limit)
    keep = folder / "keep.jsonl"
    keep.write_text("".join(json.dumps({"text": t}) + "\n" for t in keep_texts(load_suite(str(suite)))))
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["suite"] = str(suite)
    config["device"] = "cpu"
    config["keep"] = {"source": str(keep)}
    config["methods"] = [{"name": "ewc", "lam": args.lam}]
    config["training"]["steps"] = args.steps
    config["stages"][0]["data"]["held_out"] = min(config["stages"][0]["data"]["held_out"], args.limit)
    budget = args.budget or f"lambada_ppl:10%,arc_easy_val{args.limit}:5pt"  # the suite names ARC-Easy by its sample
    config["guard"] = {"budget": budget, "policy": "rollback", "every": args.every}
    config["diagnostics"] = {"drift": False, "importance": False, "interference": False}
    config["output_dir"] = str(folder / "run")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


class StepTimer(TrainerCallback):
    """Seconds from on_step_begin to on_step_end of every step; first among the trainer's callbacks.

    Added last, it moves itself to the front at on_train_begin (after ForgetPenalty has moved itself there), so its
    on_step_begin runs before the penalty adds its gradient and its on_step_end before the guard checks.
    """

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        move_to_front(find_trainer(self), self)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
        self._start = None


def step_stats(seconds: list[float]) -> dict[str, Any]:
    """The first step (warm-up: allocations, the optimizer's state) is left out when there are others."""
    timed = seconds[1:] if len(seconds) > 1 else seconds
    return {
        "steps": len(seconds),
        "median_step_s": round(statistics.median(timed), 4) if timed else None,
        "mean_step_s": round(statistics.fmean(timed), 4) if timed else None,
        "first_step_s": round(seconds[0], 4) if seconds else None,
    }


# -- what is compared --------------------------------------------------------------------------------


def checks(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each check: step, each probe's primary value (the target as `target`), each budget status, the check's."""
    rows = []
    for p in json.loads(json.dumps(points)):  # as watch.json holds them: (metric, value) pairs become lists
        values = {("target" if k == f"stage_{STAGE}" else k): v[1] for k, v in p["values"].items()}
        rows.append(
            {
                "step": p["step"],
                "values": values,
                "status": {c["probe"]: c["status"] for c in p["checks"]},
                "budget_status": point_status(p),  # within / inconclusive / over (older files: from the checks)
                "target_change": p.get("target_change"),
                "seconds": round(p.get("seconds", 0.0), 2),
            }
        )
    return rows


def decision(stopped: dict[str, Any] | None) -> dict[str, Any] | None:
    if not stopped:
        return None
    return {k: stopped.get(k) for k in ("action", "step", "restored_step", "why")}


def compare_checks(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, Any]:
    same_steps = [c["step"] for c in mine] == [c["step"] for c in theirs]
    same_status = same_steps and all(
        a["status"] == b["status"] and a["budget_status"] == b["budget_status"]
        for a, b in zip(mine, theirs, strict=True)
    )
    rel = 0.0
    for a, b in zip(mine, theirs, strict=False):
        if a["values"].keys() != b["values"].keys():
            return {"same_steps": same_steps, "same_status": False, "max_value_rel_diff": None}
        for k, v in a["values"].items():
            rel = max(rel, abs(v - b["values"][k]) / max(abs(b["values"][k]), 1e-12))
    return {"same_steps": same_steps, "same_status": same_status, "max_value_rel_diff": rel}


def compare_curves(mine: list[tuple[int, float]], theirs: list[tuple[int, float]]) -> dict[str, Any]:
    same_steps = [s for s, _ in mine] == [s for s, _ in theirs]
    diffs = [abs(a - b) for (_, a), (_, b) in zip(mine, theirs, strict=False)]
    rel = [abs(a - b) / max(abs(b), 1e-12) for (_, a), (_, b) in zip(mine, theirs, strict=False)]
    return {
        "same_steps": same_steps,
        "max_abs_diff": max(diffs, default=None),
        "max_rel_diff": max(rel, default=None),
    }


def weight_differences(model: Any, run_file: Path, base_folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    run, base = load_file(str(run_file)), {}
    for f in sorted(base_folder.glob("*.safetensors")):
        base.update(load_file(str(f)))
    mine = model.state_dict()
    names = [n for n in run if n in mine]
    if not names:
        raise SystemExit(f"no weight of {run_file} is named as the script's model's")
    diff = max(float((mine[n].float() - run[n].float()).abs().max()) for n in names)
    moved = max(float((run[n].float() - base[n].float()).abs().max()) for n in names if n in base)
    return {"weights_max_abs_diff": diff, "run_moved_max_abs": moved, "tensors_compared": len(names)}


def penalty_of(log_history: list[dict[str, Any]]) -> list[tuple[int, float]]:
    return [(h["step"], h["penalty/ewc"]) for h in log_history if "loss" in h and "penalty/ewc" in h]


# -- the three parts ---------------------------------------------------------------------------------


def part_run(folder: Path, config: Path) -> dict[str, Any]:
    """(a) `forgetless run` in a subprocess, with its own result cache."""
    env = {**os.environ, "FORGETLESS_CACHE": str(folder / "cache-run")}
    log = folder / "run.log"
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call(
            [sys.executable, "-m", "forgetless", "run", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    seconds = time.perf_counter() - start
    if code != 0:
        sys.stderr.write(log.read_text()[-5000:])
        raise SystemExit(f"forgetless run failed (exit {code}); log: {log}")
    results = json.loads((folder / "run" / "results.json").read_text())
    training = results["stages"][0]["training"]
    watch = training["watch"]
    return {
        "part": "a: forgetless run",
        "seconds": round(seconds, 1),
        "checks": checks(watch["points"]),
        "decision": decision(results["guard"]["stopped"]),
        "events": [{"step": e["step"], "action": e["action"]} for e in watch["events"]],
        "penalty_curve": [(s, p["penalty/ewc"]) for s, p in training["penalty_curve"]],
        "loss_curve": training["loss_curve"],
        "watch_seconds": round(watch["watch_seconds"], 1),
        "train_seconds": round(watch["train_seconds"], 1),
        "final_status": guard_status(results["guard"]),
    }


def run_inputs(config_path: Path) -> dict[str, Any]:
    """What the run trained on, read as the run reads it: its texts, kept texts, settings and held-out file."""
    from transformers import AutoTokenizer

    from forgetless.config.run import load_run_config
    from forgetless.models.default import default_model_folder
    from forgetless.train.data import load_examples
    from forgetless.train.finetune import settings_from

    config, _ = load_run_config(config_path)
    tok = AutoTokenizer.from_pretrained(default_model_folder())
    stage = config.stages[0]
    train, _ = load_examples(stage.data, tok, config_path.parent, f"stage '{stage.name}' data")
    keep = load_examples(config.keep, tok, config_path.parent, "keep data")[0]["text"]
    settings = settings_from(config.training, steps=stage.steps or config.training.steps, pack=False)
    held = Path(config.output_dir) / "data" / f"{stage.name}_heldout.jsonl"  # the file the run scored
    return {"config": config, "train": train, "keep": list(keep), "settings": settings, "held": held}


def seed_baseline(folder: Path, run_folder: Path, cache: Path) -> None:
    """Copy the base model's probe scores (the run's baseline) from the run's result cache into `cache`."""
    results = json.loads((run_folder / "results.json").read_text())
    (cache / "results").mkdir(parents=True, exist_ok=True)
    for probe in results["baseline"]["probes"]:
        entry = folder / "cache-run" / "results" / f"{probe['cache_key']}.json"
        shutil.copyfile(entry, cache / "results" / entry.name)


def part_script(folder: Path, inputs: dict[str, Any], run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """(b) transformers.Trainer on the run's tokenized data and arguments, with ForgetPenalty and ForgetGuard."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer

    from forgetless.models.default import default_model_folder
    from forgetless.train.data import tokenize_examples
    from forgetless.train.finetune import training_arguments

    config, settings = inputs["config"], inputs["settings"]
    model_dir = default_model_folder()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)  # the run loads float32 too
    data = tokenize_examples(inputs["train"], tok, settings.max_length, settings.pack)
    penalty, guard = user_callbacks(inputs, args, folder / "cache-script")
    trainer = Trainer(
        model=model,
        args=training_arguments(folder / "script", settings),
        train_dataset=data,
        data_collator=DataCollatorForSeq2Seq(tok, label_pad_token_id=-100),
        processing_class=tok,
        callbacks=[penalty, guard],
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    history = guard.history
    mine = checks(history["points"])
    curve = penalty_of(trainer.state.log_history)
    loss = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    # The run logs the task's loss plus the penalty (ForgetlessTrainer's loss); ForgetPenalty leaves `loss` the task's.
    penalties = dict(run["penalty_curve"])
    run_task_loss = [(s, v - penalties.get(s, 0.0)) for s, v in run["loss_curve"]]
    run_file = Path(config.output_dir) / f"stage-1-{STAGE}" / "model" / "model.safetensors"
    out = {
        "part": "b: Trainer script",
        "seconds": round(seconds, 1),
        "checks": mine,
        "decision": decision(history["stopped"]),
        "events": [{"step": e["step"], "action": e["action"]} for e in history["events"]],
        "penalty_curve": curve,
        "watch_seconds": round(history["watch_seconds"], 1),
        "fisher_seconds": round(penalty.method.fisher_seconds, 1),
        "loss_curve": loss,
        "vs_run": {
            "checks": compare_checks(mine, run["checks"]),
            "same_decision": _decision_key(history["stopped"]) == _decision_key(run["decision"]),
            "penalty": compare_curves(curve, run["penalty_curve"]),
            "loss_minus_run_penalty": compare_curves(loss, run_task_loss),
            **weight_differences(trainer.model, run_file, model_dir),
        },
    }
    return out


def _decision_key(stopped: dict[str, Any] | None) -> Any:
    return None if not stopped else (stopped["action"], stopped["step"], stopped.get("restored_step"))


def sft(folder: Path, inputs: dict[str, Any], args: argparse.Namespace, guarded: bool) -> dict[str, Any]:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from forgetless.models.default import default_model_folder

    settings = inputs["settings"]
    model_dir = default_model_folder()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    sft_args = SFTConfig(
        output_dir=str(folder / ("sft-guarded" if guarded else "sft-plain")),
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant",
        max_grad_norm=1.0,
        max_length=settings.max_length,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    train = datasets.Dataset.from_dict({"text": list(inputs["train"]["text"])})
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=train, processing_class=tok)
    guard = penalty = None
    if guarded:
        penalty, guard = user_callbacks(inputs, args, folder / "cache-sft")
        trainer.add_callback(penalty)
        trainer.add_callback(guard)
    timer = StepTimer()
    trainer.add_callback(timer)  # last: it moves itself first at on_train_begin
    start = time.perf_counter()
    trainer.train()
    out: dict[str, Any] = {"seconds": round(time.perf_counter() - start, 1), **step_stats(timer.seconds)}
    out["step_seconds"] = [round(s, 3) for s in timer.seconds]
    if guard is not None and penalty is not None:
        history = guard.history
        out |= {
            "fisher_seconds": round(penalty.method.fisher_seconds, 1),
            "checks": checks(history["points"]),
            "decision": decision(history["stopped"]),
            "watch_seconds": round(history["watch_seconds"], 1),
            "penalty_curve": penalty_of(trainer.state.log_history),
        }
    return out


def part_sft(folder: Path, inputs: dict[str, Any], run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """(c) plain SFTTrainer, then SFTTrainer with ForgetGuard + ForgetPenalty('ewc')."""
    plain = sft(folder, inputs, args, guarded=False)
    guarded = sft(folder, inputs, args, guarded=True)
    ratio = None
    if plain["median_step_s"] and guarded["median_step_s"]:
        ratio = round(guarded["median_step_s"] / plain["median_step_s"], 3)
    verdicts = [(c["step"], c["budget_status"], c["status"]) for c in guarded["checks"]]
    run_verdicts = [(c["step"], c["budget_status"], c["status"]) for c in run["checks"]]
    return {
        "part": "c: TRL SFTTrainer",
        "plain": plain,
        "guarded": guarded,
        "step_time_ratio": ratio,
        "vs_run": {
            "same_verdicts": verdicts == run_verdicts,
            "same_decision": _decision_key(guarded["decision"]) == _decision_key(run["decision"]),
            "penalty": compare_curves(guarded["penalty_curve"], run["penalty_curve"]),
        },
    }


# -- main --------------------------------------------------------------------------------------------


def summary(part: dict[str, Any]) -> dict[str, Any]:
    """The printed line: the part without its long curves."""
    drop = ("loss_curve", "step_seconds")
    return {k: (summary(v) if isinstance(v, dict) else v) for k, v in part.items() if k not in drop}


def meta(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import transformers
    import trl

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "command": " ".join(["python", "bench/script_vs_run.py", *sys.argv[1:]]),
        "date": date.today().isoformat(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "loadavg_1min_start": os.getloadavg()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "workdir")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps of every part")
    parser.add_argument("--every", type=int, default=10, help="the guard checks every N steps (and at the last)")
    parser.add_argument("--limit", type=int, default=100, help="items per probe (and at most this many held out)")
    parser.add_argument("--budget", help="default: the example's, lambada_ppl:10%%,arc_easy_val<limit>:5pt")
    parser.add_argument("--lam", type=float, default=1.0, help="EWC strength")
    parser.add_argument("--own-baselines", action="store_true", help="(b) and (c) score the base model themselves")
    parser.add_argument("--json", default=str(HERE / "results" / "script_vs_run.json"), help="where results go")
    parser.add_argument(
        "--workdir", help="work (and keep the run, checkpoints, logs) here; default: a temporary folder"
    )
    args = parser.parse_args()
    info = meta(args)
    with tempfile.TemporaryDirectory(prefix="script-vs-run-") as tmp:
        folder = Path(args.workdir) if args.workdir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        config = write_config(folder, args)
        start = time.perf_counter()
        run = part_run(folder, config)
        print(json.dumps(summary(run)), flush=True)
        inputs = run_inputs(config)
        if not args.own_baselines:
            for cache in ("cache-script", "cache-sft"):
                seed_baseline(folder, folder / "run", folder / cache)
        with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its logs: stdout keeps the JSON lines
            script = part_script(folder, inputs, run, args)
        print(json.dumps(summary(script)), flush=True)
        with contextlib.redirect_stdout(sys.stderr):
            sft_part = part_sft(folder, inputs, run, args)
        print(json.dumps(summary(sft_part)), flush=True)
        info["seconds"] = round(time.perf_counter() - start, 1)
        info["loadavg_1min_end"] = os.getloadavg()[0]
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": info, "run": run, "script": script, "sft": sft_part}, indent=1) + "\n")
    print(f"{info['seconds']:.0f} s; wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
