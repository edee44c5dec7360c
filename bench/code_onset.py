"""Where forgetting begins under continued pre-training on stdlib source (issue 6's second scenario).

Runs the `forgetless demo --scenario code` run (SmolLM2-135M, plain full fine-tuning on packed
256-token blocks of the Python standard library, batch 4, AdamW, constant rate, the quick suite and
24 held-out stdlib files scored every `--every` steps, budget 10%,5pt with the `warn` policy) once
per learning rate, and tabulates every check: LAMBADA perplexity change, ARC-Easy change, the
held-out code's perplexity change, and the step at which a general probe first went over budget
(past the limit with its 95% interval excluding zero). Writes bench/results/code_onset.json and .md.

    .venv/bin/python bench/code_onset.py --lrs 2e-4,5e-4,1e-3 --steps 100 --every 20   # ~35 min on 2 cores
    .venv/bin/python bench/code_onset.py --lrs 2e-4,5e-4,1e-3 --no-run   # re-tabulate OUT/lr-*/results.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from forgetless.pipeline.code_demo import CodePreset, onset, run_code_demo

HERE = Path(__file__).resolve().parent
# The quick suite's ARC-Easy probe; runs from before 2026-11-30 (issue 15's renaming) named it arc_easy.
ARC = ("arc_easy_val100", "arc_easy")


def arc_name(names: dict) -> str:
    return next((name for name in ARC if name in names), ARC[0])


def points(result: dict) -> list[dict]:
    rows = []
    for point in result["stages"][0]["training"]["watch"]["points"]:
        values = {c["probe"]: c for c in point["checks"]}
        rows.append(
            {
                "step": point["step"],
                "lambada_ppl_%": values.get("lambada_ppl", {}).get("change", 0.0),
                "arc_easy_pt": values.get(arc_name(values), {}).get("change", 0.0),
                "status": {p: c["status"] for p, c in values.items()},
                "code_ppl_%": 100 * point["target_change"],
                "seconds": point["seconds"],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lrs", default="2e-4,5e-4,1e-3")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("/tmp/forgetless-code-onset"))
    parser.add_argument("--no-run", action="store_true", help="only tabulate the runs already in --out")
    args = parser.parse_args()
    runs = []
    for lr in [float(x) for x in args.lrs.split(",")]:
        if args.no_run:
            result = json.loads((args.out / f"lr-{lr:g}" / "results.json").read_text())
            began = onset(result["stages"][0]["training"]["watch"])
            summary = f"first over budget at step {began['step']}" if began else "never over budget"
            runs.append({"learning_rate": lr, "onset_step": began and began["step"], "summary": summary})
            runs[-1]["points"] = points(result)
            continue
        began = time.perf_counter()
        done = run_code_demo(out=args.out / f"lr-{lr:g}", preset=CodePreset(args.steps, lr, args.every))
        runs.append(
            {
                "learning_rate": lr,
                "onset_step": done["onset"] and done["onset"]["step"],
                "summary": done["summary"],
                "points": points(done["result"]),
                "wall_seconds": time.perf_counter() - began,
            }
        )
    lines = ["| lr | step | LAMBADA ppl | ARC-Easy | held-out code ppl |", "|---|---|---|---|---|"]
    for run in runs:
        for p in run["points"][1:]:
            flag = {"over": " **over**", "noise": " (noise)"}
            lam = f"{p['lambada_ppl_%']:+.1f}%{flag.get(p['status'].get('lambada_ppl'), '')}"
            arc = f"{-p['arc_easy_pt']:+.1f}pt{flag.get(p['status'].get(arc_name(p['status'])), '')}"
            lines.append(f"| {run['learning_rate']:g} | {p['step']} | {lam} | {arc} | {p['code_ppl_%']:+.1f}% |")
    text = "\n".join(lines) + "\n\n" + "\n".join(f"- lr {r['learning_rate']:g}: {r['summary']}" for r in runs) + "\n"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "code_onset.json").write_text(json.dumps(runs, indent=1) + "\n")
    (HERE / "results" / "code_onset.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
