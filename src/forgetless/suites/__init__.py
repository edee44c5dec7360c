"""Probe suites: YAML files listing probes. Built-in suites live beside this file.

`lm-eval:arc_easy,hellaswag,piqa` is a suite too: one `lm_eval` probe per lm-evaluation-harness task
name (or task YAML path), each named after its task.

A probe's name may hold `{limit}`, replaced by its item count once limits are applied (`arc_easy_val{limit}` is
`arc_easy_val200`, and `arc_easy_val10` under `--limit 10`): probes are paired by name (compare, budgets), so a
different sample must never bear the same name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from forgetless.errors import ConfigError, ForgetlessError
from forgetless.probes import PROBES, Probe
from forgetless.registry import unknown_key_hint, unknown_name_error
from forgetless.suites.renamed import renamed_hint

BUILTIN_DIR = Path(__file__).parent
SUITE_KEYS = {"name", "description", "probes"}
LM_EVAL_PREFIX = "lm-eval:"
LIMIT_PLACEHOLDER = "{limit}"


@dataclass
class Suite:
    name: str
    description: str
    probes: list[Probe]
    path: Path

    def probe(self, name: str) -> Probe:
        for probe in self.probes:
            if probe.config.name == name:
                return probe
        known = [p.config.name for p in self.probes]
        hint = renamed_hint(name, known)
        if hint:  # a built-in probe's old name (issue 15): its new name and why
            raise ForgetlessError(
                f"suite '{self.name}' has no probe '{name}'", f"{hint}; its probes: {', '.join(known)}"
            )
        raise unknown_name_error("probe", name, known)


def with_leak_markers(suite: Suite, markers: list[str]) -> Suite:
    """The suite with `markers` added to every `generation` probe's leak markers: a fine-tune's own template
    text (probes.templates.literal_lines of its data template), so its leaking into unrelated generations
    is measured. Other probes are unchanged."""
    if not markers:
        return suite
    probes = []
    for probe in suite.probes:
        if probe.config.kind == "generation":
            leak = list(dict.fromkeys([*probe.config.leak, *markers]))  # type: ignore[attr-defined]
            probe = type(probe)(probe.config.model_copy(update={"leak": leak}), probe.base_dir)
        probes.append(probe)
    return replace(suite, probes=probes)


def builtin_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}


def _suite_path(spec: str) -> Path:
    path = Path(spec).expanduser()
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise ForgetlessError(f"suite file '{spec}' does not exist", "check the path")
        return path
    known = builtin_suites()
    if spec not in known:
        raise unknown_name_error("suite", spec, list(known))
    return known[spec]


def _format_validation(where: str, error: ValidationError, model: type[Any]) -> list[str]:
    problems = []
    for e in error.errors():
        loc = ".".join(str(p) for p in e["loc"])
        value = "" if e["type"] == "missing" else f" (value: {e.get('input')!r:.80})"
        hint = unknown_key_hint(model, e["loc"]) if e["type"] == "extra_forbidden" else ""
        problems.append(f"{where}{'.' + loc if loc else ''}: {e['msg']}{value}{hint}")
    return problems


def parse_probes(entries: Any, where: str, base_dir: Path | None) -> list[Probe]:
    """Validate every probe entry and report all problems at once."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(where, ["`probes` must be a non-empty list of probe entries"])
    problems: list[str] = []
    probes: list[Probe] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        label = f"probes[{i}]" + (f" ({entry.get('name')})" if isinstance(entry, dict) and entry.get("name") else "")
        if not isinstance(entry, dict):
            problems.append(f"{label}: must be a mapping with at least `name` and `kind`")
            continue
        kind = entry.get("kind")
        if kind not in PROBES:
            problems.append(f"{label}.kind: {unknown_name_error('probe kind', str(kind), PROBES.names())}")
            continue
        cls = PROBES.get(kind)
        entry, problem = _named(entry)
        if problem:
            problems.append(f"{label}.name: {problem}")
            continue
        try:
            config = cls.config_class(**entry)
        except ValidationError as error:
            problems.extend(_format_validation(label, error, cls.config_class))
            continue
        if config.name in seen:
            problems.append(f"{label}.name: '{config.name}' is used twice; probe names must be unique")
        seen.add(config.name)
        try:  # a kind may check more once it knows the suite's folder (lm_eval: the task exists)
            probes.append(cls(config, base_dir))
        except ForgetlessError as error:
            problems.append(f"{label}: {error}")
    if problems:
        raise ConfigError(where, problems)
    return probes


def _named(entry: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The entry with `{limit}` in its name replaced by its limit (already capped by `--limit`), or a problem."""
    name = entry.get("name")
    if not isinstance(name, str) or LIMIT_PLACEHOLDER not in name:
        return entry, ""
    limit = entry.get("limit")
    if limit is None:
        return entry, f"'{name}' holds {LIMIT_PLACEHOLDER}, which is the probe's `limit`: give the probe a `limit`"
    return {**entry, "name": name.replace(LIMIT_PLACEHOLDER, str(limit))}, ""  # a bad limit fails its own check


def lm_eval_entries(spec: str) -> list[dict[str, Any]]:
    """`lm-eval:arc_easy,hellaswag` -> one `lm_eval` probe entry per task name or task YAML path."""
    tasks = [t.strip() for t in spec.removeprefix(LM_EVAL_PREFIX).split(",") if t.strip()]
    if not tasks:
        raise ForgetlessError(f"suite '{spec}' names no lm-eval task", "write e.g. `lm-eval:arc_easy,hellaswag,piqa`")
    names = [Path(t).stem if t.endswith((".yaml", ".yml")) else t for t in tasks]
    return [
        {"name": re.sub(r"[^A-Za-z0-9_.-]", "_", n), "kind": "lm_eval", "task": t}
        for n, t in zip(names, tasks, strict=True)
    ]


def _limited(entries: Any, limit: int | None) -> Any:
    if limit is None or not isinstance(entries, list):
        return entries
    return [{**e, "limit": min(limit, e.get("limit") or limit)} if isinstance(e, dict) else e for e in entries]


def load_suite(spec: str, limit: int | None = None) -> Suite:
    """Load a built-in suite by name, a suite YAML file, or `lm-eval:TASK,...`. `limit` caps every probe's
    item count."""
    if spec.startswith(LM_EVAL_PREFIX):
        probes = parse_probes(_limited(lm_eval_entries(spec), limit), spec, Path.cwd())
        return Suite(spec, "lm-evaluation-harness tasks scored by forgetless", probes, Path(spec))
    path = _suite_path(spec)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ForgetlessError(f"suite file '{path}' is not valid YAML: {error}", "fix the YAML syntax") from error
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["the file must be a mapping with `name` and `probes`"])
    unknown = sorted(set(data) - SUITE_KEYS)
    if unknown:
        raise ConfigError(str(path), [f"unknown key(s) {unknown}; a suite has only {sorted(SUITE_KEYS)}"])
    probes = parse_probes(_limited(data.get("probes"), limit), str(path), path.parent)
    return Suite(data.get("name", path.stem), data.get("description", ""), probes, path)
