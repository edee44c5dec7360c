"""A run that forgets on cue: the tiny model trained on the old task, fine-tuned on arithmetic.

The watched suite scores old-task perplexity (which rises as the model learns arithmetic) and a
multiple-choice probe; the stage's held-out arithmetic is the target. With a high learning rate the
old perplexity rises beyond its noise band within a few steps, so budgets of a few percent break.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.methods.forgetting_setup import NEW_TRAIN, OLD_HELD


def write_guarded(folder: Path, model: Path, mc_data: Path, guard: dict[str, Any], **changes: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "old.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in OLD_HELD))
    (folder / "new.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in NEW_TRAIN[:120]))
    (folder / "suite.yaml").write_text(
        f"""name: guarded
probes:
  - name: old_ppl
    kind: perplexity
    source: {folder / "old.jsonl"}
  - name: mc
    kind: choice
    source: {mc_data}
    context: "Question: {{{{ question }}}}\\nAnswer:"
    choices: "{{{{ choices.text }}}}"
    gold: "{{{{ choices.label.index(answerKey) }}}}"
"""
    )
    config = {
        "model": str(model),
        "suite": str(folder / "suite.yaml"),
        "device": "cpu",
        "training": {"steps": 12, "learning_rate": 1e-2, "batch_size": 8, "max_length": 48, "save_steps": 100},
        "stages": [{"name": "new", "data": {"source": "new.jsonl", "held_out": 16}}],
        "output_dir": str(folder / "run"),
        "guard": guard,
        **changes,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
