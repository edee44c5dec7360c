"""Training runs with the diagnostics callback on the tiny forgetting setup (tests/methods/forgetting_setup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forgetless.config.run import DiagnosticsConfig
from forgetless.methods import Method, TrainContext


@pytest.fixture
def tiny_context(old_base: Path) -> TrainContext:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(old_base)
    tokenizer.pad_token = tokenizer.eos_token
    return TrainContext(tokenizer=tokenizer, seed=0, max_length=64)


def train_new_task(
    base: Path, tmp: Path, methods: list[Method], steps: int, make_callbacks: Any = None
) -> tuple[Any, Any]:
    """Fine-tune the old base on the new task, with `make_callbacks(context)` as callbacks: (model, callbacks)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from forgetless.train.finetune import FinetuneSettings, finetune
    from tests.methods.forgetting_setup import NEW_LR, NEW_TRAIN, OLD_TRAIN

    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base)
    context = TrainContext(tokenizer=tokenizer, keep_texts=OLD_TRAIN[:32], seed=0)
    callbacks = make_callbacks(context) if make_callbacks else []
    run = FinetuneSettings(steps=steps, learning_rate=NEW_LR, batch_size=8, max_length=48, seed=0)
    model, _ = finetune(model, tokenizer, NEW_TRAIN[:64], tmp / "trainer", run, methods, context, callbacks=callbacks)
    return model, callbacks


def train_with_diagnostics(
    base: Path, tmp: Path, methods: list[Method], steps: int = 4, extra: list[Any] | None = None, **settings: Any
) -> tuple[Any, dict[str, Any], Any]:
    """Fine-tune the old base on the new task with a StageDiagnostics callback: (model, report, callback)."""
    from forgetless.diagnostics.stage import stage_diagnostics
    from tests.methods.forgetting_setup import NEW_TRAIN

    config = DiagnosticsConfig(**{"texts": 4, "batch": 4, "sample": 200, **settings})

    def callbacks(context: TrainContext) -> list[Any]:
        return [stage_diagnostics(config, context, NEW_TRAIN[:64], [], None, tmp / "diagnostics"), *(extra or [])]

    model, (diag, *_) = train_new_task(base, tmp, methods, steps, callbacks)
    return model, diag.report(model), diag
