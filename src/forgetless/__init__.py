"""forgetless: fine-tune language models without losing what they already know.

The public surface, for scripts of your own (everything else is internal):

- `evaluate(model_or_path, suite)`: score a model on a probe suite -> `EvalResult`;
- `audit(base, tuned, suite=..., budget=...)`: what a fine-tune forgot, probe by probe -> `Audit`;
- `ForgetGuard(suite=..., budget=..., policy=...)`: a TrainerCallback that watches any Trainer (TRL's too)
  and warns, stops or rolls back when a probe breaks the forgetting budget;
- `ForgetPenalty("l2sp" | "ewc" | "distill", ...)`: a TrainerCallback that adds the method's penalty to any
  Trainer's training, before gradient clipping and without an extra forward pass;
- `KLSignal(held_out_texts)`: a TrainerCallback that logs `kl/base`, the KL from the base model on the new
  task's held-out inputs (a forgetting signal that needs no old data; `ForgetGuard(kl=...)` budgets it);
- `mix_replay(train_dataset, keep, ratio)`: experience replay as data, a `datasets.Dataset`;
- `ForgetlessError`: what every user mistake raises, with the problem and the fix.

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
    "ForgetGuard": "forgetless.guard.forget_guard",
    "ForgetPenalty": "forgetless.train.penalty_callback",
    "KLSignal": "forgetless.guard.kl_signal",
    "mix_replay": "forgetless.train.replay_data",
    "ForgetlessError": "forgetless.errors",
}

__all__ = [
    "Audit",
    "EvalResult",
    "ForgetGuard",
    "ForgetPenalty",
    "ForgetlessError",
    "KLSignal",
    "__version__",
    "audit",
    "evaluate",
    "mix_replay",
]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from forgetless.api import audit, evaluate
    from forgetless.errors import ForgetlessError
    from forgetless.evaluation.results import Audit, EvalResult
    from forgetless.guard.forget_guard import ForgetGuard
    from forgetless.guard.kl_signal import KLSignal
    from forgetless.train.penalty_callback import ForgetPenalty
    from forgetless.train.replay_data import mix_replay


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'forgetless' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
