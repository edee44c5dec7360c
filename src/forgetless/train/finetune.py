"""Fine-tune a causal LM on texts with `transformers.Trainer` and any list of methods.

The loss is next-token cross-entropy on the whole sequence. Trainer owns the loop, the optimizer
(AdamW), gradient clipping, logging and devices; this module prepares the data and calls each
method's hooks in order: prepare_model -> training_data -> (train, with penalties, parameter
groups and callbacks) -> finish.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.methods.base import Method, TrainContext


@dataclass
class FinetuneSettings:
    steps: int = 30
    learning_rate: float = 1e-4
    batch_size: int = 8
    max_length: int = 128
    seed: int = 0
    gradient_accumulation: int = 1
    warmup_steps: int = 0
    weight_decay: float = 0.0


def tokenize_texts(tokenizer: Any, dataset: Any, max_length: int) -> Any:
    return dataset.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
        batched=True,
        remove_columns=dataset.column_names,
    )


def finetune(
    model: Any,
    tokenizer: Any,
    texts: list[str] | Any,
    output_dir: Path,
    settings: FinetuneSettings,
    methods: list[Method] | None = None,
    context: TrainContext | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train on `texts` (a list or a `datasets.Dataset` with a `text` column) with `methods`.

    Returns the model to keep and Trainer's metrics with the loss curve.
    """
    import datasets
    from transformers import DataCollatorForLanguageModeling, TrainingArguments, set_seed

    from forgetless.train.trainer import ForgetlessTrainer

    methods = methods or []
    context = context or TrainContext(tokenizer=tokenizer, seed=settings.seed)
    context.total_steps, context.max_length, context.batch_size = settings.steps, settings.max_length, settings.batch_size
    set_seed(settings.seed)
    for method in methods:
        model = method.prepare_model(model, context)
    dataset = datasets.Dataset.from_dict({"text": list(texts)}) if isinstance(texts, list) else texts
    for method in methods:
        dataset = method.training_data(dataset, context)
    if len(dataset) == 0:
        raise ForgetlessError("the training data is empty", "give at least one training text")
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_steps,
        lr_scheduler_type="constant_with_warmup" if settings.warmup_steps else "constant",
        max_grad_norm=1.0,
        logging_steps=max(1, settings.steps // 10),
        save_strategy="no",
        report_to=[],
        seed=settings.seed,
        data_seed=settings.seed,
        disable_tqdm=not sys.stderr.isatty(),
        dataloader_num_workers=0,
    )
    model.train()
    trainer = ForgetlessTrainer(
        model=model,
        args=args,
        train_dataset=tokenize_texts(tokenizer, dataset, settings.max_length),
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[cb for m in methods for cb in m.callbacks(context)],
        methods=methods,
    )
    output = trainer.train()
    model.eval()
    for method in methods:
        method.end_stage(model, context)
    for method in methods:
        model = method.finish(model, context)
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return model, {**output.metrics, "loss_curve": losses}
