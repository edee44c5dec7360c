"""Probe suites: YAML files listing probes. Built-in suites live beside this file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from forgetless.errors import ConfigError, ForgetlessError
from forgetless.probes import PROBES, Probe
from forgetless.registry import unknown_key_hint, unknown_name_error

BUILTIN_DIR = Path(__file__).parent
SUITE_KEYS = {"name", "description", "probes"}


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
        raise unknown_name_error("probe", name, [p.config.name for p in self.probes])


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
        try:
            config = cls.config_class(**entry)
        except ValidationError as error:
            problems.extend(_format_validation(label, error, cls.config_class))
            continue
        if config.name in seen:
            problems.append(f"{label}.name: '{config.name}' is used twice; probe names must be unique")
        seen.add(config.name)
        probes.append(cls(config, base_dir))
    if problems:
        raise ConfigError(where, problems)
    return probes


def load_suite(spec: str, limit: int | None = None) -> Suite:
    """Load a built-in suite by name or a suite YAML file. `limit` caps every probe's item count."""
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
    entries = data.get("probes")
    if limit is not None and isinstance(entries, list):
        entries = [{**e, "limit": min(limit, e.get("limit") or limit)} if isinstance(e, dict) else e for e in entries]
    probes = parse_probes(entries, str(path), path.parent)
    return Suite(data.get("name", path.stem), data.get("description", ""), probes, path)
