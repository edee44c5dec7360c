"""The classify config: an encoder, a labelled task for its new classification head, methods, training.

`forgetless classify CONFIG` reads it. As for `forgetless run`, everything that can be checked without
a model is checked first and every problem reported at once; unknown keys are errors; precedence is
defaults < YAML < `key=value` overrides. The labels themselves are checked against the head when the
data is read, still before any model loads (`pipeline.classify`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from forgetless.config.data_check import labelled_data_problems
from forgetless.config.locations import misplaced
from forgetless.config.run import Strict, TrainingConfig, read_config, validate_with_methods
from forgetless.data.sources import Source
from forgetless.errors import ConfigError, ForgetlessError

# Methods that act on weights, gradients or the optimizer work on any classifier. The others read or
# write text for a language model (replay, distill, genreplay, expand), so they are refused up front.
CLASSIFY_METHODS = ("full", "freeze", "l2sp", "ewc", "llrd", "unfreeze", "lora", "wise", "sam")


class LabelledDataConfig(Strict):
    """Labelled records: Jinja templates for the text(s) and the class index, as in probes."""

    source: list[Source]
    text: str = Field("{{ sentence }}", description="template of the (first) text")
    text_pair: str | None = Field(None, description="template of the second text of a sentence pair")
    label: str | None = Field("{{ label }}", description="template of the class index 0..num_labels-1")
    limit: int | None = Field(default=None, gt=0)
    held_out: int = Field(default=0, ge=0, description="last N records kept out of training, scored after")
    seed: int = 1234

    @field_validator("source", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> list[Source]:
        return [Source.parse(v) for v in (value if isinstance(value, list) else [value])]


class TaskConfig(LabelledDataConfig):
    name: str = Field("task", pattern=r"^[A-Za-z0-9_.-]+$", description="names the target probe")
    num_labels: int | None = Field(None, ge=2, description="size of the head; default: largest label + 1")
    held_out: int = Field(default=200, ge=0, description="last N records kept out of training: the target probe")


class ClassifyConfig(Strict):
    model: str = Field("minilm", description="an encoder: minilm (packaged), a folder, or a hub id")
    output_dir: Path | None = None
    suite: str = "encoder"
    task: TaskConfig
    keep: LabelledDataConfig | None = Field(None, description="data of what must be kept: EWC's Fisher")
    methods: list[dict[str, Any]] = Field(default_factory=lambda: [{"name": "full"}])
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    device: str = "auto"


def _method_problems(methods: list[Any], data: dict[str, Any]) -> list[str]:
    problems = []
    for i, method in enumerate(methods):
        name = method.config.name
        if name not in CLASSIFY_METHODS:
            problems.append(
                f"methods.{i}.name: '{name}' trains a language model on text and cannot train a classifier; "
                f"use one of {', '.join(CLASSIFY_METHODS)}"
            )
        if name == "ewc":
            keep = data.get("keep")
            if not isinstance(keep, dict):
                problems.append(f"methods.{i} (ewc): ewc estimates its Fisher on `keep`; add keep: (labelled data)")
            elif keep.get("label", "{{ label }}") is None and method.config.fisher == "empirical":
                problems.append(
                    f"methods.{i} (ewc): fisher 'empirical' needs labels in keep data; set keep.label, "
                    "or fisher: sampled (labels drawn from the model)"
                )
    return problems


def _reference_problems(data: dict[str, Any], base_dir: Path) -> list[str]:
    from forgetless.suites import load_suite

    problems = []
    for where in ("task", "keep"):
        entry = data.get(where)
        sources = entry.get("source") if isinstance(entry, dict) else None
        for j, raw in enumerate(sources if isinstance(sources, list) else [sources] if sources else []):
            try:
                source = Source.parse(raw)
            except ValueError:
                continue  # reported by the model validation
            if source.path and not (base_dir / Path(source.path).expanduser()).exists():
                problems.append(f"{where}.source.{j}: path '{source.path}' does not exist (relative to {base_dir})")
    try:
        load_suite(str(data.get("suite", "encoder")))
    except ForgetlessError as error:
        problems.append(f"suite: {error}")
    return problems


def load_classify_config(path: Path, overrides: list[str] | None = None) -> tuple[ClassifyConfig, list[Any]]:
    """Read, override and validate a classify config; returns it with its instantiated methods."""
    data = read_config(path, overrides, "model:, task:, methods:")
    config, methods, problems = validate_with_methods(ClassifyConfig, data)
    problems += _method_problems(methods, data) + _reference_problems(data, path.parent) + misplaced(data, path.parent)
    for where, cls in (("task", TaskConfig), ("keep", LabelledDataConfig)):  # empty data, missing fields
        if data.get(where) is not None:
            problems += labelled_data_problems(where, data[where], path.parent, cls)
    if problems or config is None:
        raise ConfigError(str(path), problems)
    if config.output_dir is None:
        config.output_dir = Path("runs") / path.stem
    return config, methods
