"""`forgetless ls methods` (each method's settings, defaults and help) and `forgetless schema`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from forgetless.report.terminal import print_table, say


def method_rows() -> list[list[str]]:
    """One row per method (what it does), then one per setting: name, default, help."""
    from pydantic_core import PydanticUndefined

    from forgetless.methods import METHODS

    rows = []
    for name in METHODS.names():
        cls = METHODS.get(name)
        rows.append([name, "", "", (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]])
        for field, info in cls.config_class.model_fields.items():
            if field == "name":
                continue
            default = "(required)" if info.default is PydanticUndefined and info.default_factory is None else ""
            if not default:
                value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
                default = json.dumps(value, default=str)
            rows.append(["", field, default, info.description or ""])
        if hasattr(cls.config_class, "passthrough_keys"):
            rows.append(["", "...", "", "any other field of peft.LoraConfig, under its PEFT name (forgetless schema)"])
    return rows


def list_methods() -> None:
    print_table("methods and their settings", ["method", "setting", "default", "what it does"], method_rows())


def write_schema(kind: str, out: Path | None) -> dict[str, Any]:
    """Write the JSON Schema of a run config (`run`) or a suite file (`suite`) to `out`, or print it."""
    from forgetless.config.schema import run_schema, suite_schema
    from forgetless.errors import ForgetlessError
    from forgetless.paths import write_text_atomic

    makers = {"run": run_schema, "suite": suite_schema}
    if kind not in makers:
        raise ForgetlessError(f"unknown schema '{kind}'", "use run (a run config) or suite (a suite file)")
    schema = makers[kind]()
    text = json.dumps(schema, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(out, text)
        say(
            f"wrote {out}; point your editor at it, e.g. a first line "
            f"`# yaml-language-server: $schema={out.resolve()}` in the YAML"
        )
    return schema
