"""`forgetless demo --scenario code`: the slow end of forgetting, and where it begins.

Continued pre-training of SmolLM2-135M on the Python standard library's own source (the setting of
Biderman et al. 2024, "LoRA Learns Less and Forgets Less", on every machine). Broad code moves a
general model slowly: at lr 2e-4 for 100 steps it learns the code and forgets nothing measurable
(../DATA.md). So the scenario is a watched run: plain full fine-tuning on packed blocks of stdlib
source, the general probes and held-out stdlib files scored every `every` steps, and the demo's
budget applied with the `warn` policy, which records and never interrupts. Where forgetting begins
is the first check at which a general probe is past the budget with its interval excluding zero.

The run is an ordinary `forgetless run`: its config is written to the output folder first, so
`forgetless run OUT/scenario.yaml` repeats it, and results.json/report.html are the run's own.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from forgetless.models.default import DEFAULT_MODEL
from forgetless.paths import write_text_atomic
from forgetless.report.terminal import out as console

BASE_MODEL = DEFAULT_MODEL
SUITE = "quick"  # LAMBADA prose and ARC-Easy: prose perplexity moves first (../DATA.md)
STDLIB = Path(sysconfig.get_paths()["stdlib"])
BUDGET = "10%,5pt"  # the SST-2 demo's budget, so both scenarios are judged alike
FILES = 600  # stdlib files sampled (of about 2,000); each cut to its first CHARS characters
CHARS = 6000  # keeps one file from dominating, and held-out scoring to a few seconds a check
HELD_OUT = 24  # files never trained on: the target probe


@dataclass(frozen=True)
class CodePreset:
    steps: int
    learning_rate: float
    every: int


# lr 5e-4: measured (bench/RESULTS.md, bench/code_onset.py) to cross the budget within the run; at 2e-4 the
# model learns the code and keeps the budget, at 1e-3 everything breaks by the first check.
CODE_PRESETS = {
    "full": CodePreset(steps=100, learning_rate=5e-4, every=20),
    "quick": CodePreset(steps=40, learning_rate=5e-4, every=10),
}


def code_config(out: Path, preset: CodePreset, seed: int = 0) -> dict[str, Any]:
    """The scenario as a `forgetless run` config (plain data, written beside the results)."""
    return {
        "model": BASE_MODEL,
        "output_dir": str(out),
        "suite": SUITE,
        "methods": [{"name": "full"}],
        "training": {
            "steps": preset.steps,
            "learning_rate": preset.learning_rate,
            "batch_size": 4,
            "max_length": 256,
            "seed": seed,
            "save_steps": preset.steps,
        },
        "stages": [
            {
                "name": "stdlib",
                "data": {
                    "source": {"path": str(STDLIB), "pattern": "**/*.py"},
                    "format": "pack",
                    "text": f"{{{{ text[:{CHARS}] }}}}",
                    "limit": FILES,
                    "held_out": HELD_OUT,
                },
            }
        ],
        "guard": {"budget": BUDGET, "policy": "warn", "every": preset.every},
        # Drift is nearly free; the Fisher and interference points cost more than this short run.
        "diagnostics": {"importance": False, "interference": False},
    }


def onset(watch: dict[str, Any]) -> dict[str, Any] | None:
    """The first watched check at which a general probe is over the budget (past it, beyond noise)."""
    for point in watch.get("points", []):
        over = [c for c in point.get("checks", []) if c.get("status") == "over"]
        if over:
            return {"step": point["step"], "over": over}
    return None


def run_code_demo(
    quick: bool = False, out: Path | None = None, seed: int = 0, preset: CodePreset | None = None
) -> dict[str, Any]:
    from forgetless.config import load_run_config
    from forgetless.pipeline.run import run

    preset = preset or CODE_PRESETS["quick" if quick else "full"]
    folder = out or Path("forgetless-out") / ("demo-code-quick" if quick else "demo-code")
    config_file = folder / "scenario.yaml"
    write_text_atomic(config_file, yaml.safe_dump(code_config(folder, preset, seed), sort_keys=False))
    console.rule(
        f"continued pre-training on the standard library ({STDLIB}): {preset.steps} steps at lr "
        f"{preset.learning_rate}, checked every {preset.every} against budget {BUDGET}"
    )
    config, methods = load_run_config(config_file)
    config.output_dir = folder  # the file's path is absolute already; keep the caller's spelling
    result = run(config, methods, config_file.parent)
    assert result is not None  # single process
    watch = result["stages"][0]["training"].get("watch", {})
    began = onset(watch)
    summary = (
        f"forgetting began at step {began['step']} of {preset.steps} (lr {preset.learning_rate}): "
        + ", ".join(_describe(c) for c in began["over"])
        if began
        else f"no general probe left the budget {BUDGET} in {preset.steps} steps at lr {preset.learning_rate}"
    )
    console.print(f"[bold]{summary}[/]")
    console.print(f"report: {folder / 'report.html'}; repeat with: forgetless run {config_file}")
    return {"result": result, "onset": began, "summary": summary}


def _describe(check: dict[str, Any]) -> str:
    """`change` is the loss in the limit's unit (positive = worse): a rise in perplexity, a drop in accuracy."""
    if check["unit"] == "points":
        return f"{check['probe']} {check['metric']} -{check['change']:.1f} points (limit -{check['limit']:g})"
    return f"{check['probe']} {check['metric']} +{check['change']:.1f}% (limit +{check['limit']:g}%)"
