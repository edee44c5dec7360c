"""Which checkpoint a resume may use: the last complete one, never one cut off or diverged.

Trainer writes a checkpoint's `trainer_state.json` last (after the weights, optimizer, scheduler and
RNG states), so a folder whose state file is missing or unreadable was cut off mid-save (kill -9, a
full disk). transformers' `get_last_checkpoint` picks the highest number regardless, and resuming
from a cut-off folder crashed; here it is skipped, said, and removed (the resumed run writes that
step again), so checkpoint rotation, which goes by modification time, never keeps it over a good one.

A checkpoint saved at the step whose next loss is NaN holds weights that already diverged (about
1e16 in the case that prompted this), so resuming from it NaNs again: `set_aside_diverged` renames
it `diverged-checkpoint-N` (kept for inspection, out of Trainer's `checkpoint-*` pattern).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from forgetless.distributed import is_main_process

log = logging.getLogger(__name__)
PATTERN = re.compile(r"^checkpoint-(\d+)$")
DIVERGED = "diverged-"


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every `checkpoint-N` folder in `folder`, newest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := PATTERN.match(p.name))]
    return sorted(found, reverse=True)


def is_complete(checkpoint: Path) -> bool:
    """Whether Trainer finished saving `checkpoint` (its state file, written last, is whole)."""
    try:
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def last_complete(folder: Path, before: int | None = None) -> Path | None:
    """The newest complete checkpoint in `folder` (at a step below `before`, when given)."""
    return next(
        (path for step, path in checkpoints(folder) if (before is None or step < before) and is_complete(path)),
        None,
    )


def resume_point(folder: Path) -> Path | None:
    """The checkpoint to resume from; half-written newer ones are reported and removed (rank 0)."""
    chosen = last_complete(folder)
    for step, path in checkpoints(folder):
        if chosen is not None and step <= int(PATTERN.match(chosen.name).group(1)):  # type: ignore[union-attr]
            break
        instead = f"resuming from {chosen.name}" if chosen else "no complete checkpoint: this stage starts over"
        log.warning(
            "%s was half-written (its trainer_state.json, saved last, is missing or cut off: the save was "
            "interrupted); skipped and removed, %s",
            path,
            instead,
        )
        if is_main_process():
            shutil.rmtree(path, ignore_errors=True)
    return chosen


def set_aside_diverged(folder: Path, step: int) -> list[str]:
    """Rename checkpoints from `step` on (weights whose loss is not finite) to `diverged-checkpoint-N`."""
    moved = []
    for saved, path in checkpoints(folder):
        if saved >= step:
            target = path.with_name(DIVERGED + path.name)
            if is_main_process():
                shutil.rmtree(target, ignore_errors=True)
                path.rename(target)
            moved.append(target.name)
    return moved
