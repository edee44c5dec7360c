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


def train_with_diagnostics(
    base: Path, tmp: Path, methods: list[Method], steps: int = 4, extra: list[Any] | None = None, **settings: Any
) -> tuple[Any, dict[str, Any], Any]:
    """Fine-tune the old base on the new task with a StageDiagnostics callback: (model, report, callback)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from forgetless.diagnostics.stage import stage_diagnostics
    from forgetless.train.finetune import FinetuneSettings, finetune
    from tests.methods.forgetting_setup import NEW_LR, NEW_TRAIN, OLD_TRAIN

    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base)
    context = TrainContext(tokenizer=tokenizer, keep_texts=OLD_TRAIN[:32], seed=0)
    config = DiagnosticsConfig(**{"texts": 4, "batch": 4, "sample": 200, **settings})
    diag = stage_diagnostics(config, context, NEW_TRAIN[:64], [], None, tmp / "diagnostics")
    run = FinetuneSettings(steps=steps, learning_rate=NEW_LR, batch_size=8, max_length=48, seed=0)
    model, _ = finetune(
        model, tokenizer, NEW_TRAIN[:64], tmp / "trainer", run, methods, context, callbacks=[diag, *(extra or [])]
    )
    return model, diag.report(model), diag
