"""Finding lm-evaluation-harness tasks for the `lm_eval` probe, and checking them, without running their code.

A spec is a task, group or tag name, or the path of a task YAML. lm-eval's `TaskManager` indexes every
YAML under its tasks folder before it can look a name up (about 14,700 names, 15 s on 2 loaded cores),
so a name is looked up in the user's `include_path` first (lm-eval gives it precedence), then as
`<name>.yaml` under lm-eval's tasks folder (indexing that one folder), and only then in the full index.
Each index is built once per process.

Code in tasks: lm-eval's own tasks run their `!function`s as lm-eval runs them (code of an installed
package); anything from elsewhere that would run code (a `!function`, an unregistered metric, see
lmeval_code.py) is listed in the plan, and the probe refuses it until it says `trust_code: true`. Found
from the YAML text alone, before any model loads; the output type and metrics come from the same reading.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.probes.lmeval_code import code_in_config, read_yaml
from forgetless.probes.lmeval_generate import refuse_settings

INSTALL = 'pip install "forgetless[lm-eval]"'
SUPPORTED = ("multiple_choice", "loglikelihood", "loglikelihood_rolling", "generate_until")
# lm-eval's default metrics per output type (lm_eval.api.registry.DEFAULT_METRIC_REGISTRY, 0.4.13)
GROUPS = {"GROUP": "group", "TAG": "tag"}  # lm-eval's index kinds that stand for several tasks
DEFAULT_METRICS = {
    "loglikelihood": ["perplexity", "acc"],
    "loglikelihood_rolling": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
    "multiple_choice": ["acc", "acc_norm"],
    "generate_until": ["exact_match"],
}


def require_lm_eval() -> Any:
    """The `lm_eval` module, or a ForgetlessError naming the install command."""
    try:
        import lm_eval
    except ImportError as error:
        raise ForgetlessError(
            "probe kind `lm_eval` needs lm-evaluation-harness (the `lm_eval` package), which is not installed",
            f"run `{INSTALL}`",
        ) from error
    return lm_eval


def builtin_dir() -> Path:
    """lm-eval's own tasks folder."""
    require_lm_eval()
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


@contextmanager
def quiet() -> Iterator[None]:
    """lm-eval logs a warning per metric without an explicit aggregation; forgetless prints its own progress."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@lru_cache(maxsize=8)
def manager(include_path: tuple[str, ...], defaults: bool) -> Any:
    """One TaskManager per (include_path, whether lm-eval's own tasks are indexed), built once per process."""
    require_lm_eval()
    from lm_eval.tasks import TaskManager

    with quiet():
        return TaskManager(include_path=list(include_path) or None, include_defaults=defaults)


@dataclass
class TaskPlan:
    """What a spec names, found from the YAMLs alone: enough to validate a probe before a model loads."""

    spec: str  # as the user wrote it
    name: str  # lm-eval's task, group or tag name
    kind: str  # task | group | tag
    load: str  # what TaskManager.load is given: the name, or the YAML's absolute path
    include_path: tuple[str, ...]
    defaults: bool  # whether the TaskManager indexes lm-eval's own tasks
    output_types: list[str] = field(default_factory=list)  # of its tasks, each once
    leaf_metrics: list[list[str]] = field(default_factory=list)  # lm-eval metrics of each of its tasks
    code: list[str] = field(default_factory=list)  # what would run code from outside lm-eval: "file: !function fn"
    external: bool = False  # a YAML from outside lm-eval, or overrides: its templates render in Jinja's sandbox


def plan_task(
    spec: str, include_path: list[str], base_dir: Path | None, overrides: dict[str, Any] | None = None
) -> TaskPlan:
    """Resolve a spec (name or YAML path, with task-key `overrides`) the way lm-eval would, reading YAMLs only."""
    overrides = overrides or {}
    require_lm_eval()
    base = base_dir or Path.cwd()
    paths = tuple(str(_absolute(p, base)) for p in include_path)
    for p in paths:
        if not Path(p).is_dir():
            raise ForgetlessError(f"include_path '{p}' is not a folder", "give folders that hold task YAMLs")
    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        path = _absolute(spec, base)
        if not path.is_file():
            raise ForgetlessError(f"lm-eval task file '{path}' does not exist", "check the path of `task`")
        cfg, functions = read_yaml(path)
        if "group" not in cfg:
            plan = TaskPlan(spec, str(cfg.get("task")), "task", str(path), paths, False)
            _add_leaves(plan, None, {**cfg, **overrides}, {}, set(), path)
        else:  # its tasks are found beside it or in include_path, else among lm-eval's own
            local = (str(path.parent), *paths)
            make = partial(TaskPlan, spec, str(cfg["group"]), "group", str(path), local)
            plan = _grouped(make, {**cfg, **overrides}, path)
        _add_code(plan, functions)
        return _finish(plan, overrides)
    if paths and (entry := manager(paths, False).task_index.get(spec)) is not None and entry.kind.name in GROUPS:
        kind = GROUPS[entry.kind.name]
        return _finish(_grouped(partial(TaskPlan, spec, spec, kind, spec, paths), spec, overrides), overrides)
    tm, entry, indexed, defaults = _lookup(spec, paths)
    plan = TaskPlan(spec, spec, GROUPS.get(entry.kind.name, "task"), spec, indexed, defaults)
    _walk(plan, tm, spec, overrides, set())
    return _finish(plan, overrides)


def _grouped(make: Any, start: str | dict[str, Any], given: Path | dict[str, Any]) -> TaskPlan:
    """A group's or tag's plan, its tasks found in include_path alone when they all are there (no 15 s index).
    `given`: the group's YAML when `start` is its content, else the overrides of the named group."""
    for full in (False, True):
        plan: TaskPlan = make(full)
        tm = manager(plan.include_path, full)
        try:
            if isinstance(start, str):
                _walk(plan, tm, start, given if isinstance(given, dict) else {}, set())
            else:
                _add_leaves(plan, tm, start, {}, set(), given if isinstance(given, Path) else None)
        except ForgetlessError:
            if full:
                raise
            continue
        return plan
    raise AssertionError("the full index either finds the tasks or raises")


def _absolute(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def _lookup(name: str, paths: tuple[str, ...]) -> tuple[Any, Any, tuple[str, ...], bool]:
    """The TaskManager that knows `name` at the least indexing cost, its entry, the folders it indexed and
    whether it indexed lm-eval's own tasks too."""
    if paths:
        user = manager(paths, False)
        entry = user.task_index.get(name)
        if entry is not None:
            return user, entry, paths, False
    for candidate in sorted(builtin_dir().rglob(f"{name}.yaml")):
        try:
            cfg, _ = read_yaml(candidate)
        except ForgetlessError:
            continue
        if cfg.get("task") == name and "group" not in cfg and "class" not in cfg:
            folders = (str(candidate.parent), *paths)
            tm = manager(folders, False)
            entry = tm.task_index.get(name)
            if entry is not None and entry.kind.name == "TASK":
                return tm, entry, folders, False
    return _full(name, paths)


def _full(name: str, paths: tuple[str, ...]) -> tuple[Any, Any, tuple[str, ...], bool]:
    tm = manager(paths, True)
    entry = tm.task_index.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, tm.all_tasks, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ForgetlessError(
            f"unknown lm-eval task, group or tag '{name}'",
            f"{hint}`lm_eval ls tasks` lists the names; for your own task give its YAML path or `include_path`",
        )
    return tm, entry, paths, True


def _walk(plan: TaskPlan, tm: Any, name: str, overrides: dict[str, Any], seen: set[str]) -> None:
    """Follow a registered name to its tasks (through groups and tags), noting their YAMLs' code."""
    if name in seen:
        return
    seen.add(name)
    entry = tm.task_index.get(name)
    if entry is None:
        raise ForgetlessError(f"lm-eval group '{plan.name}' lists '{name}', which no YAML defines", "fix the group")
    origin = Path(entry.yaml_path).resolve() if entry.yaml_path is not None else None
    if origin is not None:
        _add_code(plan, read_yaml(origin)[1])
    if entry.kind.name == "TAG":
        for child in sorted(entry.tags):
            _walk(plan, tm, child, overrides, seen)
    else:
        _add_leaves(plan, tm, {**(entry.cfg or {}), **overrides}, overrides, seen, origin)


def _add_leaves(
    plan: TaskPlan, tm: Any, cfg: dict[str, Any], overrides: dict[str, Any], seen: set[str], origin: Path | None
) -> None:
    """A task's output type and metrics, or a group's tasks; `origin` is the YAML the config came from."""
    external = origin is None or not origin.is_relative_to(builtin_dir())
    plan.external = plan.external or external
    if "group" not in cfg:
        output = cfg.get("output_type") or "unknown (a Python task)"
        if output not in plan.output_types:
            plan.output_types.append(output)
        listed = [m for m in cfg.get("metric_list") or [] if isinstance(m, dict)]
        plan.leaf_metrics.append(
            [m["metric"] for m in listed if isinstance(m.get("metric"), str)] or DEFAULT_METRICS.get(output, [])
        )
        if output == "generate_until":  # greedy only: a sampling task is refused before a model loads
            refuse_settings(str(cfg.get("task")), cfg.get("generation_kwargs"))
        if external:
            plan.code += [f"{origin or 'overrides'}: {what}" for what in code_in_config(cfg, listed)]
        return
    from lm_eval.config.group import GroupConfig  # the keys a group keeps; the rest override its tasks

    group_keys = set(GroupConfig.__dataclass_fields__)
    inherited = {**overrides, **{k: v for k, v in cfg.items() if k not in group_keys}}
    for item in cfg.get("task") or []:
        if isinstance(item, str):
            _walk(plan, tm, item, inherited, seen)
        elif isinstance(item, dict) and isinstance(item.get("group"), str) and item["group"] not in tm.task_index:
            _add_leaves(plan, tm, item, inherited, seen, origin)  # an inline group
        elif isinstance(item, dict):
            ref = item.get("group") or item.get("task")
            extra = {k: v for k, v in item.items() if k not in ("group", "task")}
            if isinstance(ref, str) and ref in tm.task_index:
                _walk(plan, tm, ref, {**inherited, **extra}, seen)
            else:  # an inline task, defined in the group's own YAML
                _add_leaves(plan, tm, {**inherited, **item}, {}, seen, origin)


def _add_code(plan: TaskPlan, functions: dict[Path, list[str]]) -> None:
    builtin = builtin_dir()
    for path, names in functions.items():
        if names and not path.is_relative_to(builtin):
            plan.code += [f"{path}: !function {n}" for n in names if f"{path}: !function {n}" not in plan.code]


def _finish(plan: TaskPlan, overrides: dict[str, Any]) -> TaskPlan:
    plan.external = plan.external or bool(overrides)
    unsupported = [t for t in plan.output_types if t not in SUPPORTED]
    if len(plan.output_types) > 1 and "unknown (a Python task)" not in plan.output_types:
        raise ForgetlessError(
            f"lm-eval {plan.kind} '{plan.spec}' mixes output types {plan.output_types}",
            "give its tasks as separate probes (one per output type)",
        )
    if unsupported and unsupported != ["unknown (a Python task)"]:
        raise ForgetlessError(
            f"lm-eval task '{plan.spec}' has output_type {unsupported[0]!r}", f"use one of {SUPPORTED}"
        )
    return plan


def common_metrics(plan: TaskPlan) -> list[str]:
    """The lm-eval metrics every task of the plan reports, in the first task's order."""
    first, *rest = plan.leaf_metrics or [[]]
    return [m for m in first if all(m in other for other in rest)]
