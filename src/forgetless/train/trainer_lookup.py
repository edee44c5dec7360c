"""Find the transformers Trainer that is calling a callback.

A TrainerCallback is given the model, the tokenizer and the optimizer, never the Trainer itself,
but forgetless's callbacks need it: to log through `Trainer.log` (so `report_to` integrations see
the values), to read the fp16 loss scale and the gradient accumulation, and to refuse sharded
gradients. TRL's own callbacks take `trainer=` in their constructor; that breaks the one-line
`trainer.add_callback(ForgetGuard(...))`, which is created before or without the trainer. So our
callbacks accept `trainer=` and otherwise, on their first event, walk up the call stack to the
Trainer whose `callback_handler` holds them: every event is dispatched by a Trainer method
(`self.callback_handler.on_...`), so that Trainer is a few frames up, whatever its subclass (TRL's
SFTTrainer, DPOTrainer) or however the script built it.
"""

from __future__ import annotations

import inspect
from typing import Any

from forgetless.errors import ForgetlessError


def find_trainer(callback: Any) -> Any | None:
    """The Trainer on the call stack whose callback handler holds `callback` (by identity), or None."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            candidate = frame.f_locals.get("self")
            handler = getattr(candidate, "callback_handler", None)
            if handler is not None and any(c is callback for c in getattr(handler, "callbacks", [])):
                return candidate
            frame = frame.f_back
    finally:
        del frame  # a frame kept in a local would keep every frame above it alive
    return None


def trainer_of(callback: Any, given: Any | None, name: str) -> Any:
    """`given` when the user passed `trainer=`, else the Trainer found on the stack; an error when neither."""
    trainer = given if given is not None else find_trainer(callback)
    if trainer is None:
        raise ForgetlessError(
            f"{name} was called outside a transformers Trainer, so it cannot log or follow the training loop",
            f"add it with trainer.add_callback({name}(...)), or pass trainer=your_trainer",
        )
    return trainer


def move_to_front(trainer: Any, callback: Any) -> None:
    """Put `callback` first among the trainer's callbacks, so what it adds to `logs` in `on_log` reaches
    the report_to integrations and the progress printer (which Trainer adds before user callbacks).

    Safe while the handler is iterating over the list: the callback moves from position k to 0, so
    every later callback keeps its index and none is skipped or called twice.
    """
    callbacks = trainer.callback_handler.callbacks
    index = next(i for i, c in enumerate(callbacks) if c is callback)
    callbacks.insert(0, callbacks.pop(index))


def tokenizer_of(trainer: Any, processing_class: Any, name: str) -> Any:
    """The trainer's tokenizer: its `processing_class` (a processor's `.tokenizer`), or an error saying how
    to give one."""
    found = processing_class if processing_class is not None else getattr(trainer, "processing_class", None)
    found = getattr(found, "tokenizer", found)  # a multimodal processor wraps the tokenizer
    if found is None or not callable(getattr(found, "encode", None)):
        raise ForgetlessError(
            f"{name} needs the model's tokenizer to score probes and read kept texts, and the trainer has none",
            "pass processing_class=tokenizer to the Trainer (or SFTTrainer)",
        )
    return found
