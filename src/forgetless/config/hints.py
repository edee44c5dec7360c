"""Where a Hugging Face name belongs when it is written in the wrong place of a run config.

A user who knows transformers, PEFT and bitsandbytes writes their names: `max_steps` under `training`
(it goes under `training.args`, or is forgetless's `training.steps`), `lora_alpha` at the top (it goes in
a lora method), `load_in_4bit` under `model` (it goes under `model.quantization`). The hint says where.
"""

from __future__ import annotations

from typing import Any

from forgetless.train.trainer_args import HF_TWINS, LEGACY, TWINS


def misplaced_hint(loc: tuple[Any, ...]) -> str:
    """For an unknown key at `loc`: "; did you mean 'training.args.max_steps'?" and the like; empty when the
    key is no Hugging Face name this module knows, or sits where no such name is expected."""
    *parents, key = loc
    where = [str(p) for p in parents]
    if not isinstance(key, str) or where not in ([], ["training"], ["model"]):
        return ""
    if where == ["model"] or not where:
        from forgetless.config.model import QuantizationConfig

        if key in QuantizationConfig.model_fields:
            return f"; did you mean 'model.quantization.{key}'?"
        if key == "torch_dtype":
            return "; did you mean 'model.dtype'?"
    if where == ["model"]:
        return ""
    if key in TWINS and not where:
        return f"; did you mean 'training.{key}'?"
    if key in LEGACY or _trainer_field(key):
        ours = HF_TWINS.get(key)
        same = f" (or training.{ours}, the same setting)" if ours else ""
        return f"; did you mean 'training.args.{key}'{same}?"
    if _peft_field(key):
        return f"; did you mean it in a lora method: methods: [{{name: lora, {key}: ...}}]?"
    return ""


def _trainer_field(key: str) -> bool:
    from forgetless.config.training_args import trainer_fields

    return key in trainer_fields()


def _peft_field(key: str) -> bool:
    from forgetless.methods.lora import ALIASES, peft_fields

    return key in peft_fields() and key not in ALIASES and key != "r"  # `r` alone is too short to guess from
