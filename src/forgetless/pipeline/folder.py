"""One run per output folder: a second run never mixes with, or overwrites, an earlier one.

Everything a run keeps for a resume lives under its `output_dir`: checkpoints, the watch's
`watch.json` and best weights, methods' state (EWC's Fisher, genreplay's texts), diagnostics'
points, `--auto` trials, and the results. A new run into a folder holding any of it would read
that state back as its own (the watch reported "5 checks (steps 2, 4, 6, 2, 4)"; a rollback would
restore the old run's weights), so it is refused unless the user says `--resume` (continue it) or
`--fresh` (discard it).

A resume must continue the same run: `run.json` records the settings that shape training when the
run starts, and `--resume` under other settings is refused, naming what changed (a checkpoint of
6 steps resumed with `training.steps: 3` reported 3 steps with the 6-step model's numbers).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.paths import write_json_atomic

RUN_STATE = "run.json"
RUN_STATE_SCHEMA = "forgetless.run-state/1"
# Settings that do not change what is trained: the folder may move, the run may resume on another
# device, and logging integrations (and where they write or push) can change.
IGNORED = (
    "output_dir",
    "device",
    "training.report_to",
    *(f"training.args.{k}" for k in ("logging_dir", "run_name", "push_to_hub", "hub_", "disable_tqdm")),
)
# What forgetless writes at the top of an output folder (stage-* folders are matched by pattern).
OWN = (RUN_STATE, "config.yaml", "results.json", "summary.md", "report.html", "auto.json", "auto.md")
OWN_FOLDERS = ("state", "auto", "data", "figures", "logs")


def fingerprint(resolved: dict[str, Any], config_dir: Path) -> dict[str, Any]:
    """The settings that shape training, flattened (`training.steps: 6`), with local data files' digests."""
    flat = {k: v for k, v in _flatten(resolved).items() if not k.startswith(IGNORED)}
    for key, value in list(flat.items()):
        # A data file edited in place changes training as surely as a changed setting.
        if key.endswith(".path") and isinstance(value, str) and (config_dir / value).expanduser().is_file():
            flat[f"{key} (contents)"] = _digest(config_dir / value)
    return flat


def kept_state(out: Path) -> list[str]:
    """What an earlier run left in `out` that a run would read back or overwrite, in words."""
    out = Path(out)
    if not out.is_dir():
        return []
    found = []
    for stage in sorted(out.glob("stage-*")):
        found += [f"{stage.name}/checkpoints/{c.name}" for c in sorted((stage / "checkpoints").glob("*checkpoint-*"))]
        found += [f"{stage.name}/watch/{f.name}" for f in sorted((stage / "watch").glob("*")) if f.is_file()]
        found += [f"{stage.name}/diagnostics/{f.name}" for f in sorted((stage / "diagnostics").glob("*.json"))]
        found += [f"{stage.name}/{f}" for f in ("model", "eval.json") if (stage / f).exists()]
    found += [f"state/{f.name}" for f in sorted((out / "state").glob("*")) if f.is_file()]
    found += [f"auto/{t.name} (an --auto trial)" for t in sorted((out / "auto").glob("*")) if t.is_dir()]
    # run.json alone (a run stopped before it trained or scored anything) holds nothing to mix with.
    found += [name for name in ("results.json", "auto.json") if (out / name).is_file()]
    return found


def claim(out: Path, settings: dict[str, Any], resume: bool, fresh: bool) -> None:
    """Make `out` this run's folder, or refuse with what is there and how to go on.

    Reads only, then (rank 0) clears with `fresh` and records `settings`; call it before any model loads.
    """
    from forgetless.distributed import barrier, is_main_process

    out = Path(out)
    if resume and fresh:
        raise ForgetlessError("--resume and --fresh contradict each other", "give one of them")
    found = [] if fresh else kept_state(out)
    saved = _read(out / RUN_STATE)
    if found and not resume:
        listing = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
        raise ForgetlessError(
            f"{out} already holds a run ({listing}); a new run there would mix with it",
            f"continue that run with --resume, discard it and start over with --fresh, "
            f"or set output_dir to another folder (e.g. output_dir={out}-2)",
        )
    if resume and saved is not None:
        changed = _changes(saved.get("settings", {}), settings)
        if changed:
            raise ForgetlessError(
                f"--resume: the settings changed since {out} was started, so its checkpoints belong to "
                f"another run: {'; '.join(changed)}",
                f"resume with the settings it started with (see {out / 'config.yaml'}), or run the new "
                f"settings with --fresh (discards that run) or in another output_dir",
            )
    barrier()
    if is_main_process():
        if fresh:
            clear(out)
        if saved is None or not resume:
            record = {"schema": RUN_STATE_SCHEMA, "hash": _hash(settings), "settings": settings}
            write_json_atomic(out / RUN_STATE, record)
    barrier()


def clear(out: Path) -> list[str]:
    """Delete what forgetless wrote in `out` (and nothing else); returns what was removed."""
    out = Path(out)
    removed = []
    for path in [*sorted(out.glob("stage-*")), *(out / f for f in OWN_FOLDERS + OWN)]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(path.name)
    return removed


def _changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    keys = sorted(set(before) | set(now))
    missing = "(not set)"
    return [
        f"{k}: {before.get(k, missing)} -> {now.get(k, missing)}"
        for k in keys
        if before.get(k, missing) != now.get(k, missing)
    ]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat |= _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    return flat


def _hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def _digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
