"""forgetless: fine-tune language models without losing what they already know.

The public surface, for scripts of your own (everything else is internal):

- `evaluate(model_or_path, suite)`: score a model on a probe suite -> `EvalResult`;
- `audit(base, tuned, suite=..., budget=...)`: what a fine-tune forgot, probe by probe -> `Audit`.

Names load on first use: `import forgetless` stays fast (no torch, no transformers).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it. Loaded on first access (PEP 562).
_PUBLIC = {
    "evaluate": "forgetless.api",
    "audit": "forgetless.api",
    "EvalResult": "forgetless.evaluation.results",
    "Audit": "forgetless.evaluation.results",
}

__all__ = ["Audit", "EvalResult", "__version__", "audit", "evaluate"]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from forgetless.api import audit, evaluate
    from forgetless.evaluation.results import Audit, EvalResult


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'forgetless' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
