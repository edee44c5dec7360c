"""Quality table of the demo (benchmark 3 of issue 6): every method, several seeds, one frontier.

Runs `forgetless demo [--quick] --seed S` once per seed, each in its own process (its wall time and
peak RSS are its own), into OUT/seed-S (models are saved there: about 3 GB a seed, so not in the
repository), then tabulates per method and seed: the target's held-out perplexity change, every
general probe's change with its verdict (forgot / kept / improved, by the 95% paired interval), the
share of the demo budget used by the worst budgeted probe and whether the method was within it (the
frontier of `forgetless compare`, recomputed here). Writes
bench/results/demo_quality[-quick].json and .md and prints the markdown.

    .venv/bin/python bench/demo_quality.py --seeds 0,1            # ~40 min on 2 idle cores
    .venv/bin/python bench/demo_quality.py --seeds 0,1 --quick    # ~10 min
    .venv/bin/python bench/demo_quality.py --seeds 0,1 --no-run   # re-tabulate finished runs
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from forgetless.pipeline.compare import compare

HERE = Path(__file__).resolve().parent
FORGETLESS = Path(sys.executable).with_name("forgetless")


def run_seed(out: Path, seed: int, quick: bool) -> dict:
    command = [str(FORGETLESS), "demo", "--seed", str(seed), "--out", str(out), *(["--quick"] if quick else [])]
    print("$", " ".join(command), flush=True)
    began = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # GiB; the largest child so far
    return {"seed": seed, "wall_seconds": wall, "peak_rss_gib_so_far": peak}


def change(comparison: dict) -> str:
    if comparison["metric"] == "perplexity":
        text = f"{comparison['relative']:+.1%}"
    else:
        text = f"{100 * comparison['delta']:+.1f}pt"
    mark = {"forgot": " forgot", "improved": " better"}.get(comparison["verdict"], "")
    return text + mark


def tabulate(folders: dict[int, Path]) -> dict:
    methods: dict[str, dict] = {}
    probes: list[str] = []
    for seed, folder in folders.items():
        demo = json.loads((folder / "demo.json").read_text())
        # The frontier with the current code (not the run's compare.json), so re-tabulating stays consistent.
        frontier = {e["label"]: e for e in compare([folder / "demo.json"], demo["budget"])["entries"]}
        for name, audit in demo["methods"].items():
            row = methods.setdefault(name, {"seeds": {}})
            cells: dict[str, dict] = {}
            for c in audit["comparisons"]:
                cells.setdefault(c["probe"], c)  # the first comparison of a probe is its primary metric
            probes = probes or [p for p in cells if p != "target"]
            row["seeds"][seed] = {
                "target_ppl_change": cells["target"]["relative"],
                "probes": {p: change(cells[p]) for p in probes},
                "forgot": [p for p in probes if cells[p]["verdict"] == "forgot"],
                "budget_used": frontier[name]["budget_used"],
                "status": frontier[name]["status"],
                "seconds": demo["seconds"].get(name),
            }
        if demo.get("repair"):
            methods["repair"]["seeds"][seed]["alpha"] = demo["repair"]["chosen_alpha"]
    for row in methods.values():
        gains = [s["target_ppl_change"] for s in row["seeds"].values()]
        row["target_ppl_change_mean"] = statistics.fmean(gains)
        # Shown within only: an inconclusive seed is not within (it counts in `inconclusive`).
        row["within_budget"] = sum(s["status"] == "within" for s in row["seeds"].values())
        row["inconclusive"] = sum(s["status"] in ("inconclusive", "noise") for s in row["seeds"].values())
    totals = {seed: json.loads((f / "demo.json").read_text())["seconds"] for seed, f in folders.items()}
    return {"probes": probes, "methods": methods, "seconds": totals}


def markdown(table: dict, seeds: list[int]) -> str:
    header = ["method", "target ppl change", *table["probes"], "budget used", "budget status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in table["methods"].items():
        runs = [row["seeds"][s] for s in seeds if s in row["seeds"]]
        label = name + (f" (alpha {', '.join(str(r['alpha']) for r in runs)})" if "alpha" in runs[0] else "")
        cells = [
            label,
            " / ".join(f"{r['target_ppl_change']:+.1%}" for r in runs),
            *(" / ".join(r["probes"][p] for r in runs) for p in table["probes"]),
            " / ".join(f"{r['budget_used']:.0f}%" for r in runs),
            " / ".join(r["status"] for r in runs),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    legend = (
        f"Each cell: seed {' / seed '.join(map(str, seeds))}. Perplexities in % change, accuracies in points; "
        "forgot/better: the 95% paired interval excludes zero. Budget used: the worst budgeted probe's change as a "
        "share of its limit; status: within (every budgeted probe shown within), inconclusive (neither) or over."
    )
    return "\n".join(lines) + "\n\n" + legend + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("/tmp/forgetless-demo-quality"))
    parser.add_argument("--no-run", action="store_true", help="only tabulate folders already written")
    args = parser.parse_args()
    if not FORGETLESS.is_file():
        sys.exit(f"{FORGETLESS} not found: run with the project's .venv/bin/python (make install)")
    seeds = [int(s) for s in args.seeds.split(",")]
    base = args.out / ("quick" if args.quick else "full")
    folders = {s: base / f"seed-{s}" for s in seeds}
    runs = [] if args.no_run else [run_seed(folders[s], s, args.quick) for s in seeds]
    table = tabulate(folders)
    text = markdown(table, seeds)
    name = "demo_quality-quick" if args.quick else "demo_quality"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{name}.json").write_text(json.dumps({"runs": runs, **table}, indent=1) + "\n")
    (HERE / "results" / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
