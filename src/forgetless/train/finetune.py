"""Plain full fine-tuning of a causal LM on a list of texts, with `transformers.Trainer`.

The loss is next-token cross-entropy on the whole sequence. Trainer owns the loop, the optimizer
(AdamW), gradient clipping, logging and devices; this module only prepares the data.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError


@dataclass
class FinetuneSettings:
    steps: int = 30
    learning_rate: float = 1e-4
    batch_size: int = 8
    max_length: int = 128
    seed: int = 0


def finetune(
    model: Any, tokenizer: Any, texts: list[str], output_dir: Path, settings: FinetuneSettings
) -> dict[str, Any]:
    """Train `model` in place on `texts`; returns Trainer's training metrics and the loss curve."""
    import datasets
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments, set_seed

    if not texts:
        raise ForgetlessError("the training data is empty", "give at least one training text")
    set_seed(settings.seed)
    data = datasets.Dataset.from_dict({"text": texts}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=settings.max_length),
        batched=True,
        remove_columns=["text"],
    )
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant",
        max_grad_norm=1.0,
        logging_steps=max(1, settings.steps // 10),
        save_strategy="no",
        report_to=[],
        seed=settings.seed,
        disable_tqdm=not sys.stderr.isatty(),
        dataloader_num_workers=0,
        use_cpu=not _cuda(),
    )
    model.train()
    trainer = Trainer(
        model=model, args=args, train_dataset=data, data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False)
    )
    output = trainer.train()
    model.eval()
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return {**output.metrics, "loss_curve": losses}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES") != ""
