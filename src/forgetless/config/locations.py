"""Where a relative path in a config points: one rule for every path.

A path written in the config file is relative to the file's folder, wherever `forgetless` is run from:
`model` (or `model.path`), `suite`, `output_dir`, `guard.probes`, the file and folder fields of
`training.args` (`logging_dir`, `deepspeed`, `fsdp_config`) and data sources alike (a config and its data travel
together). A path given on the command line as `key=value` is relative to the working directory, as
every other command-line path is. Names are not paths: a built-in model or suite keeps its name, and
a hub id (`org/model`) that is no folder beside the config stays a hub id.

Only `output_dir`'s default, `runs/<config name>`, is under the working directory: it is not written
in the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

# Top-level keys holding a path (or a name), and what kind: "model" and "suite" values may be names.
PATH_KEYS = {
    "model": "model",
    "model.path": "model",
    "suite": "suite",
    "output_dir": "path",
    "guard.probes": "suite",
    # Hugging Face fields of `training.args` that name a file or folder (a deepspeed or fsdp config may
    # also be a mapping, which stays as written).
    "training.args.logging_dir": "path",
    "training.args.deepspeed": "path",
    "training.args.fsdp_config": "path",
}
# A data source given on the command line: `stages.0.data.source`, `keep.source.1`, `task.source.0.path`.
_SOURCE_KEY = re.compile(r"^(stages\.\d+\.data|keep|task)\.source(\.\d+)?(\.path)?$")


def resolve_file_paths(data: dict[str, Any], base: Path) -> None:
    """Make the relative `model`, `suite`, `output_dir` and `guard.probes` of a config file absolute against
    its folder, in place. Data sources stay as written: they are read against the same folder."""
    for key, kind in PATH_KEYS.items():
        node, last = _parent(data, key)
        if node is not None and isinstance(node.get(last), str):
            node[last] = resolve(node[last], kind, base)


def resolve_override(key: str, value: Any, cwd: Path) -> Any:
    """The value of a `key=value` override, its relative paths made absolute against the working directory."""
    if key in PATH_KEYS:
        return resolve(value, PATH_KEYS[key], cwd) if isinstance(value, str) else value
    if _SOURCE_KEY.match(key):
        if key.endswith(".path"):
            return _absolute(value, cwd) if isinstance(value, str) else value
        return [_source(v, cwd) for v in value] if isinstance(value, list) else _source(value, cwd)
    return value


def resolve(value: str, kind: str, base: Path) -> str:
    """`value` against `base` when it is a relative path; names and absolute paths unchanged."""
    if kind == "path":
        return _absolute(value, base)
    if _is_name(value, kind):
        return value
    candidate = base / Path(value).expanduser()
    explicit = value.startswith(("./", "../")) or Path(value).suffix in {".yaml", ".yml", ".gguf"}
    if Path(value).expanduser().is_absolute() or candidate.exists() or explicit:
        return _absolute(value, base)
    return value  # a hub id, or a missing path reported by the loader


def misplaced(data: dict[str, Any], config_dir: Path) -> list[str]:
    """A relative `model` or `suite` left as a name that is a path in the working directory: the user meant a
    path, written relative to where they stood rather than to the config file."""
    problems = []
    for key, kind in PATH_KEYS.items():
        node, last = _parent(data, key)
        value = node.get(last) if node is not None else None
        if kind == "path" or not isinstance(value, str) or _is_name(value, kind) or Path(value).is_absolute():
            continue
        if Path(value).expanduser().exists():
            problems.append(
                f"{key}: '{value}' is not in {config_dir}, the config file's folder, which relative paths in the "
                f"file are read from (it is in the working directory); write it relative to {config_dir}, or absolute"
            )
    return problems


def _is_name(value: str, kind: str) -> bool:
    if kind == "model":
        from forgetless.models.default import BUILTIN_NAMES
        from forgetless.models.encoder import ENCODER_NAMES

        return value in BUILTIN_NAMES or value in ENCODER_NAMES
    from forgetless.suites import builtin_suites

    return value in builtin_suites()


def _source(value: Any, cwd: Path) -> Any:
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        return {**value, "path": _absolute(value["path"], cwd)}
    if isinstance(value, str) and not value.startswith(("olmo:", "hf:")):
        return _absolute(value, cwd)
    return value


def _absolute(value: str, base: Path) -> str:
    return os.path.abspath(base / Path(value).expanduser())  # `..` folded, symlinks kept


def _parent(data: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, str]:
    *heads, last = key.split(".")
    node: Any = data
    for head in heads:
        node = node.get(head) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), last
