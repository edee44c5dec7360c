"""Watch overhead on examples/sst2-guard.yaml: checks' time against training's, per variant of the guard.

Runs `forgetless run examples/sst2-guard.yaml` once per variant (each with its own fresh result cache, so
no check is served from an earlier run's scores) and reads each stage's watch.json: training seconds
(without checks), every check's seconds and the share of items it scored (sequential checks), and the
overhead as the watch reports it (checks before the last, over training; the last check's scores are
reused by the run's final evaluation).

    python bench/watch_overhead.py --out /tmp/watch-overhead            # run every variant, then the table
    python bench/watch_overhead.py --out /tmp/watch-overhead --read     # the table from finished runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from results_md import write_block  # noqa: E402

EXAMPLE = ROOT / "examples" / "sst2-guard.yaml"
VARIANTS = {  # name: overrides on the example (policy warn: every check runs, whatever it finds)
    "every 50, sequential": ["guard.every=50"],
    "every 50, LAMBADA limit only": ["guard.every=50", "guard.budget=lambada_ppl:10%"],
    "auto": ["guard.every=auto"],
}
BEGIN, END = "<!-- watch-overhead:begin -->", "<!-- watch-overhead:end -->"


def run(out: Path, name: str, overrides: list[str]) -> None:
    folder = out / name.replace(" ", "-").replace(",", "")
    env = {**os.environ, "FORGETLESS_CACHE": str(folder / "cache")}
    command = ["forgetless", "run", str(EXAMPLE), f"output_dir={folder / 'run'}", "--policy", "warn", *overrides]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "run.log").open("w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)


def row(out: Path, name: str) -> str | None:
    found = list((out / name.replace(" ", "-").replace(",", "")).glob("run/stage-*/watch/watch.json"))
    if not found:
        return None
    watch = json.loads(found[0].read_text())
    train = watch["train_seconds"]
    checks = [p for p in watch["points"] if p["step"] > 0]
    before_last = [p for p in checks if not p.get("last")]
    extra = sum(p["seconds"] for p in before_last)
    steps = max(p["step"] for p in watch["points"])
    cells = ", ".join(
        f"{p['step']}: {p['seconds']:.0f} s ({p.get('items_share', 1.0):.2g} of items)" for p in before_last
    )
    return (
        f"| {name} | {steps} | {train:.0f} s ({train / steps:.2f} s/step) | {cells or 'none'} | {extra / train:.1%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--read", action="store_true", help="only read finished runs")
    parser.add_argument("--write", action="store_true", help="refresh the block in bench/RESULTS.md")
    args = parser.parse_args()
    for name, overrides in VARIANTS.items():
        if not args.read:
            run(args.out, name, overrides)
    rows = [r for r in (row(args.out, name) for name in VARIANTS) if r]
    table = "\n".join(
        [
            "| variant | steps | training | checks before the last (step: seconds, share of items) | overhead |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if args.write:
        block = f"{BEGIN}\n{table}\n{END}"
        write_block(ROOT / "bench" / "RESULTS.md", BEGIN, END, block, "Watch overhead on examples/sst2-guard.yaml")


if __name__ == "__main__":
    main()
