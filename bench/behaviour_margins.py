"""Margins of the methods' behaviour tests, measured across seeds and CPU kernel settings.

Every mitigation's behaviour test (tests/methods/test_*.py) runs the shared forgetting setup
(tests/methods/forgetting_setup.py: a tiny Llama that learnt the old task, fine-tuned on arithmetic)
and asserts `forgetting < F x plain's` and `gain > G x plain's`. torch picks other kernels on other
CPUs, so the same seed sums floats in another order; a threshold is only safe if every seed and
every kernel setting lands well inside it. This script runs plain fine-tuning and every tested
method in one subprocess per (seed, ATEN_CPU_CAPABILITY, OMP_NUM_THREADS) and writes the ratios and
the tests' thresholds to bench/results/behaviour_margins.json; the tests cite the worst case.

    .venv/bin/python bench/behaviour_margins.py                     # seeds 0-2 natively + seed 0 on each setting
    .venv/bin/python bench/behaviour_margins.py --seeds 0 --settings default:1
    .venv/bin/python bench/behaviour_margins.py --no-run            # re-tabulate the saved results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "behaviour_margins.json"

# (method, settings, forgetting ratio must stay below, gain ratio must stay above): as in the tests.
CASES = [
    ("l2sp", {"alpha": 0.01}, 0.7, 0.3),
    ("ewc", {"lam": 1.0}, 0.7, 0.3),
    ("replay", {"ratio": 0.5}, 0.7, 0.5),
    ("lora", {"target_modules": ["q_proj", "v_proj"]}, 0.7, 0.2),
    ("freeze", {"part": "first_n", "n": 1}, None, None),  # the head forgets arithmetic: tested on reorder
    ("reorder/freeze", {"part": "first_n", "n": 1}, 0.95, 0.8),
    ("unfreeze", {}, None, None),  # likewise
    ("reorder/unfreeze", {}, 0.85, 0.8),
    ("llrd", {"decay": 0.5}, 0.85, 0.5),
    ("distill", {"weight": 1.0}, 0.7, 0.3),
    ("wise", {"alpha": 0.5}, 0.7, 0.3),
    ("sam", {}, None, 0.9),  # does not forget less here: only its learning is asserted
    ("reorder/sam", {}, None, None),
    ("expand", {"blocks": 2}, None, 0.5),  # keeps the base exactly, not its function: only learning asserted
    (
        "genreplay",
        {"samples": 32, "max_new_tokens": 32, "min_words": 6, "ratio": 0.5, "prompts": ["the", "a", "our"]},
        0.7,
        0.5,
    ),
]


def child(seed: int) -> dict:
    """One seed under the current environment's kernels: plain and every case."""
    sys.path.insert(0, str(ROOT))
    from tests.conftest import build_model, build_tokenizer
    from tests.methods.forgetting_setup import fine_tune_new, make, train_old_base

    tmp = Path(tempfile.mkdtemp())
    tokenizer = build_tokenizer(tmp / "tiny")
    build_model(tmp / "tiny", len(tokenizer), seed=seed)
    start = time.perf_counter()
    base = train_old_base(tmp / "tiny", tmp / "old", seed=seed)
    plains = {task: fine_tune_new(base, [], tmp / task, seed=seed, task=task) for task in ("arithmetic", "reorder")}
    row = {
        "old_before": plains["arithmetic"].old_before,
        "plain": {t: {"forgetting": p.forgetting, "gain": p.gain} for t, p in plains.items()},
        "methods": {},
    }
    for case, settings, _, _ in CASES:
        task, name = case.split("/") if "/" in case else ("arithmetic", case)
        outcome = fine_tune_new(base, [make(name, **settings)], tmp / case, seed=seed, task=task)
        row["methods"][case] = {
            "forgetting_ratio": outcome.forgetting / plains[task].forgetting,
            "gain_ratio": outcome.gain / plains[task].gain,
        }
    row["seconds"] = time.perf_counter() - start
    return row


def settings_list(text: str) -> list[tuple[str, str]]:
    """'native:2,avx2:1' -> [('native', '2'), ('avx2', '1')]."""
    return [tuple(item.split(":")) for item in text.split(",")]  # type: ignore[misc]


def run_one(seed: int, capability: str, threads: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability != "native":
        env["ATEN_CPU_CAPABILITY"] = capability
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(seed)], env=env, capture_output=True, text=True, check=True
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    # Kept beside the table so a long sweep can be read while it runs.
    with (HERE / "results" / "behaviour_margins.partial.jsonl").open("a") as handle:
        handle.write(json.dumps({"seed": seed, "capability": capability, "threads": threads, **row}) + "\n")
    return {"seed": seed, "capability": capability, "threads": int(threads), **row}


def table(rows: list[dict]) -> str:
    lines = [
        "| method | test: forgetting ratio < | worst measured | test: gain ratio > | worst measured |",
        "|---|---|---|---|---|",
    ]
    for name, _, max_forgetting, min_gain in CASES:
        worst_f = max(r["methods"][name]["forgetting_ratio"] for r in rows)
        worst_g = min(r["methods"][name]["gain_ratio"] for r in rows)
        limit = "not asserted" if max_forgetting is None else f"{max_forgetting:.2f}"
        gain = "not asserted" if min_gain is None else f"{min_gain:.2f}"
        lines.append(f"| {name} | {limit} | {worst_f:.3f} | {gain} | {worst_g:.3f} |")
    old = [r["old_before"] for r in rows]
    lines.append(f"\nold task before: {min(old):.3f}-{max(old):.3f} nats")
    for task in ("arithmetic", "reorder"):
        plain = [r["plain"][task] for r in rows]
        lines.append(
            f"plain on {task}: forgetting {min(p['forgetting'] for p in plain):.3f}-"
            f"{max(p['forgetting'] for p in plain):.3f}, gain {min(p['gain'] for p in plain):.2f}-"
            f"{max(p['gain'] for p in plain):.2f} ({len(rows)} runs)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seeds", default="0,1,2", help="seeds run with the machine's own kernels and 2 threads")
    parser.add_argument("--settings", default="default:2,avx2:2,native:1", help="CAPABILITY:THREADS run at seed 0")
    parser.add_argument("--jobs", type=int, default=2, help="children run at once")
    parser.add_argument("--no-run", action="store_true", help="re-tabulate bench/results/behaviour_margins.json")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    if args.no_run:
        rows = json.loads(RESULTS.read_text())["runs"]
    else:
        combos = [(int(s), "native", "2") for s in args.seeds.split(",")]
        combos += [(0, cap, threads) for cap, threads in settings_list(args.settings)]
        # Two at a time: the results do not depend on load (each child fixes its kernels and threads).
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(lambda combo: run_one(*combo), combos))
        for row in rows:
            print(json.dumps({k: row[k] for k in ("seed", "capability", "threads", "seconds")}))
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps({"cases": CASES, "runs": rows}, indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
