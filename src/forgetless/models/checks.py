"""Checks on a model folder before transformers reads it, so a broken folder is one clear error.

Left to transformers, a truncated weight file or a folder that needs its own Python code ends in a
100-line traceback from deep inside the loader. These checks read only config.json and the first
bytes of each weight file, and name the file, what is wrong and the fix.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError

REDOWNLOAD = "the download or copy was interrupted or the file is damaged: download or copy the model again"
NO_REMOTE_CODE = (
    "forgetless never runs Python code that comes with a model (no trust_remote_code): use a model of an "
    "architecture transformers implements, or convert the checkpoint to one"
)


def check_model_folder(folder: Path, what: str = "model") -> None:
    """Raise a ForgetlessError naming the file when `folder` cannot load without running its own code,
    or when a weight file in it is incomplete."""
    config = read_config_json(folder / "config.json")
    check_architecture(config, folder / "config.json", what)
    check_weight_files(folder)


def read_config_json(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ForgetlessError(f"'{path}' is not valid JSON ({error})", REDOWNLOAD) from error
    if not isinstance(config, dict):
        raise ForgetlessError(f"'{path}' is not a JSON object", REDOWNLOAD)
    return config


def check_architecture(config: dict[str, Any], path: Path, what: str) -> None:
    """A model_type transformers does not know loads only with trust_remote_code, which we never set."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type in CONFIG_MAPPING:
        return  # an `auto_map` beside a known model_type is ignored: transformers uses its own code
    code = config.get("auto_map")
    if model_type is None and not code:
        return  # transformers may still recognise the folder by name; its own error is clear enough
    import transformers

    files = sorted({str(ref).split("--")[-1].split(".")[0] + ".py" for ref in _refs(code)}) if code else []
    found = f"model_type '{model_type}'" if model_type is not None else "no model_type"
    problem = f"the {what} '{path.parent}' cannot load: {path} has {found}"
    if model_type is not None:
        problem += f", which transformers {transformers.__version__} does not implement"
    if files:
        problem += f"; the folder's own code would be needed ({', '.join(files)}, named in auto_map)"
    upgrade = f"upgrade transformers (`pip install -U transformers`) if '{model_type}' is newer than it; "
    raise ForgetlessError(problem, (upgrade if model_type is not None else "") + NO_REMOTE_CODE)


def _refs(auto_map: Any) -> list[str]:
    """The module references in an auto_map: values are "module.Class" or [slow, fast] tokenizer pairs."""
    values = auto_map.values() if isinstance(auto_map, dict) else []
    refs: list[str] = []
    for value in values:
        refs.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
    return refs


def check_weight_files(folder: Path) -> None:
    """Every shard a safetensors index names exists, and every .safetensors file is as long as its header says."""
    for index in folder.glob("*.safetensors.index.json"):
        shards = sorted(set(read_config_json(index).get("weight_map", {}).values()))
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise ForgetlessError(
                f"'{index}' lists weight files that are not in the folder: {', '.join(missing)}", REDOWNLOAD
            )
    for path in sorted(folder.glob("*.safetensors")):
        check_safetensors(path)


def check_safetensors(path: Path) -> None:
    """A .safetensors file is an 8-byte header length, a JSON header with each tensor's byte range, then data;
    a file shorter than the largest range (an interrupted download) is truncated."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ForgetlessError(f"'{path}' is truncated: {size} bytes, not even a safetensors header", REDOWNLOAD)
        (length,) = struct.unpack("<Q", head)
        if 8 + length > size:
            raise ForgetlessError(
                f"'{path}' is truncated: {size:,} bytes, shorter than its own header ({8 + length:,} bytes)",
                REDOWNLOAD,
            )
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ForgetlessError(f"'{path}' is not a safetensors file: its header is not JSON", REDOWNLOAD) from error
    ends = [t.get("data_offsets", [0, 0])[-1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)]
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        raise ForgetlessError(
            f"'{path}' is truncated: {size:,} bytes of the {expected:,} its header describes", REDOWNLOAD
        )
