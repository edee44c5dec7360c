"""Layers import downward only (shared/DESIGN.md): every `forgetless` import, read with `ast`, points down.

A lazy import inside a function counts: it is a dependency all the same. An import under
`if TYPE_CHECKING:` does not: it only names a type for annotations and never runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "forgetless"

# Top to bottom; a module may import its own layer and the ones below it.
LAYERS: list[tuple[str, ...]] = [
    ("cli", "__main__"),
    ("api", "__init__"),  # the public surface; the CLI calls the same functions
    ("pipeline",),  # orchestration: run, repair, compare, demo, auto
    ("config",),  # validates a whole run config, so it knows every component's settings (the budget's too)
    ("report",),
    ("guard",),
    ("diagnostics",),
    ("train", "continual"),  # continual: the same mitigations on plain PyTorch modules
    ("evaluation", "cache"),  # cache: probe results keyed by content
    ("methods",),
    ("probes", "suites"),  # suites are data for probes
    ("metrics",),
    ("models", "data"),
    ("errors", "paths", "registry", "distributed"),  # used everywhere, import nothing of ours above them
]
RANK = {name: len(LAYERS) - i for i, names in enumerate(LAYERS) for name in names}

# Known exceptions, each with its reason. Keep this short.
ALLOWED = {
    # `EvalResult.write(folder)` / `Audit.write(folder)`: a result a user holds writes its own files
    # through the report layer's writers, imported when called. Nothing in evaluation renders.
    ("evaluation/results.py", "report"),
}


def _unit(relative: Path) -> str:
    """The layer unit of a source file: its top-level package, or its own name for a top-level module."""
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imported_units(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, unit) of every `forgetless` import outside `if TYPE_CHECKING:`."""
    skip = _type_checking_lines(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "forgetless":  # `from forgetless import __version__` or a submodule
                modules = [f"forgetless.{alias.name}" for alias in node.names]
            else:
                modules = [node.module]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] != "forgetless" or len(parts) < 2:
                continue
            unit = parts[1]
            found.append((node.lineno, "errors" if unit == "__version__" else unit))  # a constant of the root
    return found


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        unit = _unit(relative)
        for line, target in _imported_units(ast.parse(path.read_text(encoding="utf-8"))):
            if target == unit or (relative.as_posix(), target) in ALLOWED:
                continue
            if target not in RANK or unit not in RANK:
                problems.append(f"{relative}:{line}: {unit} or {target} has no layer in tests/test_layers.py")
            elif RANK[target] > RANK[unit]:
                problems.append(f"{relative}:{line}: {unit} imports {target}, a layer above it")
    return problems


def test_no_module_imports_a_layer_above_it() -> None:
    assert upward_imports() == []


def test_every_package_has_a_layer() -> None:
    units = {_unit(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    assert units - set(RANK) == set()


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    tree = ast.parse("from forgetless.pipeline.run import run\nif TYPE_CHECKING:\n    from forgetless.cli import app\n")
    assert _imported_units(tree) == [(1, "pipeline")]
    assert RANK["pipeline"] > RANK["guard"] > RANK["evaluation"]
