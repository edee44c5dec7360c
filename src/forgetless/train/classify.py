"""Fine-tune a classifier (an encoder with a sequence-classification head) with `transformers.Trainer`.

The sibling of `train.finetune` for labelled data: the loss is the head's cross-entropy, computed by
the model itself from `labels`; the same `ForgetlessTrainer` adds each method's penalty and parameter
groups, and the hooks run in the same order: prepare_model -> (train, with penalties, parameter
groups and callbacks) -> end_stage -> finish. `training_data` is not called: the methods that use it
mix text into a language model's data (replay), which a classifier cannot train on.

The labels are checked against the head before anything trains: a label outside 0..num_labels-1
would otherwise fail deep inside the loss, or, on a GPU, as a device-side assert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from forgetless.errors import ForgetlessError
from forgetless.methods.base import Method, TrainContext
from forgetless.models.encoder import has_classifier_head
from forgetless.probes.labelled import Labelled, check_labels
from forgetless.train.finetune import FinetuneSettings
from forgetless.train.trainer_args import as_ran, point_tensorboard, tensorboard_dir, trainer_kwargs, training_arguments


def encode_labelled(data: Labelled, tokenizer: Any, max_length: int) -> dict[str, list[list[int]]]:
    """Token ids of every example (pairs jointly: `[CLS] a [SEP] b [SEP]`), truncated to `max_length`."""
    args = (data.texts,) if data.pairs is None else (data.texts, data.pairs)
    enc = tokenizer(*args, truncation=True, max_length=max_length)
    return {k: list(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}


def keep_batches(data: Labelled, tokenizer: Any, max_length: int, limit: int) -> list[tuple[dict[str, Any], Any]]:
    """(inputs, target) batches of one example each, for EWC's per-example Fisher (`TrainContext.keep_batches`).

    Unlabelled data gets target 0 everywhere: only EWC's `fisher: sampled`, which draws its own
    labels from the model, may use it (the config checks this).
    """
    head = data.take(list(range(min(limit, len(data)))))
    enc = encode_labelled(head, tokenizer, max_length)
    labels = head.labels or [0] * len(head)
    return [({k: torch.tensor([enc[k][i]]) for k in enc}, torch.tensor([labels[i]])) for i in range(len(head))]


def finetune_classifier(
    model: Any,
    tokenizer: Any,
    data: Labelled,
    output_dir: Path,
    settings: FinetuneSettings,
    methods: list[Method] | None = None,
    context: TrainContext | None = None,
    callbacks: list[Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train `model`'s head (and whatever the methods leave trainable) on labelled `data`.

    Returns the model to keep (a PeftModel under LoRA) and Trainer's metrics with the loss curve.

    Raises:
        ForgetlessError: before training, when the model has no classification head, the data is
            empty or unlabelled, or a label does not fit the head.
    """
    import datasets
    from transformers import DataCollatorWithPadding, set_seed

    from forgetless.train.trainer import ForgetlessTrainer

    if not has_classifier_head(model):
        raise ForgetlessError(
            f"{type(model).__name__} has no sequence-classification head to train",
            "load the encoder with num_labels (forgetless.models.load_encoder(spec, num_labels=n))",
        )
    if len(data) == 0 or data.labels is None:
        raise ForgetlessError("the training data is empty or has no labels", "give labelled examples (`label`)")
    check_labels(data.labels, model.config.num_labels, "the training data")
    methods = methods or []
    context = context or TrainContext(tokenizer=tokenizer, seed=settings.seed)
    context.total_steps, context.max_length, context.batch_size = (
        settings.steps,
        settings.max_length,
        settings.batch_size,
    )
    set_seed(settings.seed)
    for method in methods:
        model = method.prepare_model(model, context)
    columns = {**encode_labelled(data, tokenizer, settings.max_length), "labels": list(data.labels)}
    model.train()
    args = training_arguments(output_dir, settings)
    trainer = ForgetlessTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_dict(columns),
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[cb for m in methods for cb in m.callbacks(context)] + list(callbacks or []),
        methods=methods,
    )
    logs_dir = tensorboard_dir(output_dir, settings)
    point_tensorboard(trainer, logs_dir)
    metrics = trainer.train().metrics
    model.eval()
    for method in methods:
        method.end_stage(model, context)
    for method in methods:
        model = method.finish(model, context)
    logs = trainer.state.log_history
    losses = [(h["step"], h["loss"]) for h in logs if "loss" in h]
    penalties = [(h["step"], {k: v for k, v in h.items() if k.startswith("penalty/")}) for h in logs if "loss" in h]
    ran = as_ran(args, trainer_kwargs(output_dir, settings), logs_dir)
    return model, {**metrics, "loss_curve": losses, "penalty_curve": [p for p in penalties if p[1]], "args": ran}
