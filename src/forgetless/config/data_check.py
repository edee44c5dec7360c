"""Read the first record of every local data source and render every template on it, before any model loads.

Empty data or a record without the templated field otherwise passes `forgetless validate` and fails
minutes into `run`, after the model has loaded and the baseline probes have run. One record per source
finds both: a file with no records, and a template naming a field the records do not have.

Hub sources are skipped: reading one means a download (and a network). Built-in suites are skipped:
their probes are tested with the package; a suite file of the user's own is checked like the data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forgetless.data.sources import Source, load_one
from forgetless.errors import ForgetlessError
from forgetless.probes.templates import render

# Probe config fields that are not templates even when they are strings.
NOT_TEMPLATES = {"name", "kind", "role", "description"}


def run_data_problems(data: dict[str, Any], base_dir: Path) -> list[str]:
    """Every stage's data, `keep` and the suite's probes, on the raw run config mapping."""
    stages = data.get("stages") if isinstance(data.get("stages"), list) else []
    entries = [(f"stages.{i}.data", s.get("data")) for i, s in enumerate(stages) if isinstance(s, dict)]
    entries.append(("keep", data.get("keep")))
    problems = [p for where, entry in entries if entry is not None for p in stage_data_problems(where, entry, base_dir)]
    return problems + suite_problems(str(data.get("suite", "quick")), base_dir)


def source_problems(
    where: str,
    sources: list[Source],
    base_dir: Path,
    templates: dict[str, str | None],
    streaming: bool = False,
    shape: Callable[[dict[str, Any]], str | None] | None = None,
) -> tuple[list[str], int | None]:
    """Sources without records, templates that fail on a source's first record and a first record of the
    wrong `shape`; and the number of records (None when a source was not read: a hub source, or a path
    reported missing elsewhere; or streamed, when only the first record is read)."""
    problems: list[str] = []
    total: int | None = None if streaming else 0
    for j, source in enumerate(sources):
        if source.hub or (source.path and not _local(source.path, base_dir).exists()):
            total = None  # not read here (hub), or already reported as a missing path
            continue
        try:
            records = load_one(source, base_dir, streaming)
            first = next(iter(records), None) if streaming else (records[0] if len(records) else None)
        except ForgetlessError as error:
            problems.append(f"{where}.source.{j}: {_sentence(error)}")
            total = None
            continue
        if first is None:
            problems.append(
                f"{where}.source.{j}: '{source.describe()}' has no records; point it at data with at least one"
            )
            continue
        total = None if total is None else total + len(records)
        wrong = shape(first) if shape else None
        if wrong:
            problems.append(f"{where}.source.{j}: the first record of '{source.describe()}' {wrong}")
        for field, template in templates.items():
            if template is None:
                continue
            try:
                render(template, first, native=False, where=f"first record of '{source.describe()}'")
            except ForgetlessError as error:
                problems.append(f"{where}.{field}: {_sentence(error)}")
    return problems, total


def stage_data_problems(where: str, entry: Any, base_dir: Path) -> list[str]:
    """A run's `data` mapping (a stage's or `keep`): the templates of its format, held_out against the count."""
    from forgetless.config.run import DataConfig

    def templates(data: Any) -> dict[str, str | None]:
        if data.format in ("messages", "prompt_completion"):
            return {}  # TRL's fields, read as they are: their shape is checked instead
        return {"prompt": data.prompt, "response": data.response} if data.format == "chat" else {"text": data.text}

    return entry_problems(where, entry, base_dir, DataConfig, templates, lambda data: SHAPES.get(data.format))


def labelled_data_problems(where: str, entry: Any, base_dir: Path, config_class: type[Any]) -> list[str]:
    """A classify config's `task` or `keep`: text, text_pair and label templates."""
    return entry_problems(
        where, entry, base_dir, config_class, lambda d: {"text": d.text, "text_pair": d.text_pair, "label": d.label}
    )


def entry_problems(
    where: str, entry: Any, base_dir: Path, config_class: type[Any], templates: Any, shape: Any = None
) -> list[str]:
    """Validate `entry` as `config_class` (its problems are reported by the config validation), then read it."""
    try:
        data = config_class(**entry) if isinstance(entry, dict) else None
    except ValidationError:
        return []
    if data is None:
        return []
    streaming = getattr(data, "streaming", False)
    check = shape(data) if shape else None
    problems, total = source_problems(where, data.source, base_dir, templates(data), streaming, check)
    if total:
        used = min(total, data.limit or total)
        if data.held_out >= used:
            problems.append(
                f"{where}.held_out: {data.held_out} leaves no training examples out of {used} record(s); "
                "lower held_out or add data"
            )
    return problems


def _messages_problem(value: Any, field: str) -> str | None:
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return None
    return f"has a `{field}` that is not a list of {{role, content}} messages (got {value!r:.60})"


def _messages_shape(record: dict[str, Any]) -> str | None:
    """format: messages reads TRL's `messages` field: a list of {role, content}."""
    if "messages" not in record:
        return f"has no `messages` field (fields: {', '.join(sorted(record))}); format: messages reads TRL's"
    return _messages_problem(record["messages"], "messages")


def _prompt_completion_shape(record: dict[str, Any]) -> str | None:
    """format: prompt_completion reads TRL's `prompt` and `completion`: both text, or both messages."""
    missing = [k for k in ("prompt", "completion") if k not in record]
    if missing:
        return (
            f"lacks {' and '.join(missing)} (fields: {', '.join(sorted(record))}); format: prompt_completion reads both"
        )
    prompt, completion = record["prompt"], record["completion"]
    if isinstance(prompt, str) and isinstance(completion, str):
        return None
    return _messages_problem(prompt, "prompt") or _messages_problem(completion, "completion")


SHAPES = {"messages": _messages_shape, "prompt_completion": _prompt_completion_shape}


def check_streaming(data: Any) -> Any:
    """A streamed data config must not need the whole set: held_out takes the last records, a stream's end."""
    if data.streaming and data.held_out:
        raise ValueError(
            f"held_out {data.held_out} takes the last records of the data, which a stream reaches only at its end; "
            "put the held-out records in a file of their own and score it as a perplexity probe of the suite, "
            "or set streaming: false"
        )
    return data


def suite_problems(spec: str, config_dir: Path) -> list[str]:
    """Render the templates of every probe in a suite file of the user's on its sources' first records."""
    from forgetless.suites import builtin_suites, load_suite

    if spec in builtin_suites():
        return []
    try:
        suite = load_suite(spec)
    except ForgetlessError:
        return []  # reported by check_references
    problems = []
    for probe in suite.probes:
        config = probe.config
        if not config.source:
            continue
        templates = {
            name: value
            for name, value in config.model_dump().items()
            if name not in NOT_TEMPLATES and isinstance(value, str) and ("{{" in value or "{%" in value)
        }
        base = probe.base_dir or config_dir
        problems += source_problems(f"suite probe '{config.name}'", config.source, base, templates)[0]
    return problems


def _local(path: str, base_dir: Path) -> Path:
    local = Path(path).expanduser()
    return local if local.is_absolute() else base_dir / local


def _sentence(error: ForgetlessError) -> str:
    return error.problem if error.fix is None else f"{error.problem}; {error.fix}"
