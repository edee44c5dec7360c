"""A user's own training script, built to match `forgetless run` on tests/guard/guard_setup.py's config.

`forgetless run` trains with Trainer on `tokenize_examples` of the stage's texts and
`training_arguments` of its settings; a script given the same data and arguments trains the same
weights, so its guard and penalties can be compared with the run's step by step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainerCallback

from forgetless.train.data import tokenize_examples
from forgetless.train.finetune import FinetuneSettings, training_arguments
from tests.methods.forgetting_setup import NEW_TRAIN

TRAIN, HELD = NEW_TRAIN[:104], NEW_TRAIN[104:120]  # write_guarded's 120 texts, the last 16 held out
SETTINGS = {"steps": 12, "learning_rate": 1e-2, "batch_size": 8, "max_length": 48, "save_steps": 100}


def held_out_file(folder: Path) -> Path:
    path = folder / "held.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in HELD))
    return path


def plain_trainer(
    model_dir: Path,
    output_dir: Path,
    callbacks: list[Any],
    model: Any = None,
    texts: list[str] = TRAIN,
    **settings: Any,
) -> Trainer:
    """transformers.Trainer on `texts`, with forgetless run's arguments and data for the same settings."""
    import datasets

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = model if model is not None else AutoModelForCausalLM.from_pretrained(model_dir)
    values = FinetuneSettings(**{**SETTINGS, **settings})
    data = tokenize_examples(datasets.Dataset.from_dict({"text": texts}), tok, values.max_length, False)
    return Trainer(
        model=model,
        args=training_arguments(output_dir, values),
        train_dataset=data,
        data_collator=DataCollatorForSeq2Seq(tok, label_pad_token_id=-100),
        processing_class=tok,
        callbacks=callbacks,
    )


def sft_trainer(model_dir: Path, output_dir: Path, callbacks: list[Any], model: Any = None, **config: Any) -> Any:
    """TRL's SFTTrainer on the same texts, configured as a user would (language modeling on `text`)."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = model if model is not None else AutoModelForCausalLM.from_pretrained(model_dir)
    config = {"max_steps": 12, **config}
    args = SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        max_length=48,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        bf16=False,
        disable_tqdm=True,
        **config,
    )
    train = datasets.Dataset.from_dict({"text": TRAIN})
    return SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tok, callbacks=callbacks)


class LogRecorder(TrainerCallback):
    """What a report_to integration would receive: every `logs` dict passed to on_log."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.logs.append(dict(logs or {}))
