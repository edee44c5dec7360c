"""What in an lm-eval task runs code, found without running it; and lm-eval's templates in Jinja's sandbox.

lm-eval treats task files as code: `!function module.name` imports a Python file (beside the YAML, or
any installed module) when the task is built, `class: !function ...` makes the task a Python class, a
metric lm-eval does not register is loaded by HF `evaluate` (which runs that metric's script), and
`doc_to_text` / `doc_to_choice` / `doc_to_target` templates render in a plain Jinja environment, where a
template can reach Python (`{{ cycler.__init__.__globals__ }}`). The `lm_eval` probe reads YAMLs with a
loader that imports nothing (`read_yaml`), names what would run (`code_in_config` and the `!function`s),
and renders templates of YAMLs from outside lm-eval in Jinja's immutable sandbox (`sandboxed_templates`),
as forgetless renders its own templates (probes/templates.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from forgetless.errors import ForgetlessError


class _Function(str):
    """A `!function` reference, as its text: found by the scan, never imported."""


class _ScanLoader(yaml.SafeLoader):
    pass


_ScanLoader.add_constructor("!function", lambda loader, node: _Function(loader.construct_scalar(node)))


def read_yaml(path: Path, _seen: frozenset[Path] = frozenset()) -> tuple[dict[str, Any], dict[Path, list[str]]]:
    """A task YAML with its `include`s merged as lm-eval merges them (the file's own keys win), and the
    `!function` references of each file read. Nothing is imported."""
    path = path.expanduser().resolve()
    if path in _seen:
        raise ForgetlessError(f"task YAML '{path}' includes itself", "remove the include cycle")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_ScanLoader)  # noqa: S506 (a SafeLoader)
    except (OSError, yaml.YAMLError) as error:
        raise ForgetlessError(f"cannot read task YAML '{path}': {error}", "check the file") from error
    if not isinstance(data, dict):
        raise ForgetlessError(f"task YAML '{path}' is not a mapping", "an lm-eval task YAML has `task:` and more keys")
    functions = {path: _functions(data)}
    includes = data.pop("include", None)
    merged: dict[str, Any] = {}
    for inc in includes if isinstance(includes, list) else [includes] if includes else []:
        sub, sub_functions = read_yaml(path.parent / inc, _seen | {path})
        sub.pop("task_list", None)
        merged.update(sub)
        functions.update(sub_functions)
    return {**merged, **data}, functions


def _functions(value: Any) -> list[str]:
    if isinstance(value, _Function):
        return [str(value)]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _functions(v)]
    if isinstance(value, list):
        return [f for v in value for f in _functions(v)]
    return []


def code_in_config(cfg: dict[str, Any], metrics: list[dict[str, Any]]) -> list[str]:
    """Keys of a task config that make lm-eval run code it does not ship: a metric it does not register
    (or `hf_evaluate: true`) is loaded by HF `evaluate`, which runs that metric's script; `use_prompt`
    renders promptsource templates outside any sandbox."""
    import lm_eval.api.metrics  # noqa: F401  (registers lm-eval's metrics)
    from lm_eval.api.registry import metric_registry

    out = [
        f"metric_list: {m['metric']!r} (HF evaluate runs its script)"
        for m in metrics
        if isinstance(m.get("metric"), str) and (m.get("hf_evaluate") or m["metric"] not in metric_registry)
    ]
    return out + (["use_prompt (promptsource templates)"] if cfg.get("use_prompt") else [])


def template_refused(what: str, error: Exception) -> ForgetlessError:
    return ForgetlessError(
        f"{what}: a template reaches into Python, which the sandbox refused: {error}",
        "read the task's templates; set `trust_code: true` on the probe to render them as lm-eval does",
    )


@contextmanager
def sandboxed_templates(active: bool, what: str) -> Iterator[None]:
    """While active, lm-eval renders task templates in Jinja's immutable sandbox (attribute and call checks,
    no mutation), with its own settings and filters; restored after. Inactive: lm-eval's plain environment.
    A template the sandbox refuses becomes a ForgetlessError that starts with `what`."""
    if not active:
        yield
        return
    import lm_eval.utils
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    plain = getattr(lm_eval.utils, "env", None)
    if plain is None or not hasattr(lm_eval.utils, "apply_template"):  # fail closed on another lm-eval layout
        raise ForgetlessError(
            "this lm-eval version renders task templates where forgetless cannot sandbox them",
            "set `trust_code: true` on the probe to render them as lm-eval does, or install lm-eval 0.4.13",
        )
    sandbox = ImmutableSandboxedEnvironment(
        loader=plain.loader, undefined=plain.undefined, keep_trailing_newline=plain.keep_trailing_newline
    )
    sandbox.filters.update(plain.filters)
    lm_eval.utils.env = sandbox
    try:
        yield
    except SecurityError as error:
        raise template_refused(what, error) from error
    finally:
        lm_eval.utils.env = plain
