"""LoRA, DoRA and QLoRA through PEFT: the base weights stay frozen, small adapters learn the new task.

LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models") adds a trainable
low-rank update B @ A (rank r, scaled by lora_alpha / r) beside each targeted linear layer. DoRA (Liu et
al., 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation") also learns each column's magnitude.
QLoRA (Dettmers et al., 2023, "QLoRA: Efficient Finetuning of Quantized LLMs") trains the same
adapters over a base quantized to 4 (or 8) bits by bitsandbytes, on a CUDA GPU: the run config says so
on the model (`model.quantization`), and this method prepares a base it finds quantized.

Settings use PEFT's names (`r`, `lora_alpha`, `lora_dropout`, `target_modules`, and any other field of
PEFT's LoraConfig, which checks them); forgetless's earlier `alpha` and `dropout` are still taken.

Forgetting is bounded because the update has rank r and the base is never written: disabling the
adapters gives the base model back exactly. The adapters themselves come from PEFT, never from here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext
from forgetless.models.load_options import quantized_bits

# forgetless's first names for PEFT's settings: still taken, written as PEFT's in the resolved config.
ALIASES = {"alpha": "lora_alpha", "dropout": "lora_dropout"}
# PEFT fields forgetless sets itself, and why.
OWNED = {
    "task_type": "forgetless chooses it from the model (CAUSAL_LM, SEQ_CLS with the head kept trainable...)",
    "peft_type": "this method is LoRA",
    "base_model_name_or_path": "PEFT records the model the adapter was trained on",
    "inference_mode": "the adapter is trained",
    "auto_mapping": "PEFT's own bookkeeping",
    "peft_version": "PEFT's own bookkeeping",
    "revision": "the model is loaded by forgetless (model.path)",
}
MOVED_QUANTIZE = (
    "moved: the base is quantized as it loads, so say it on the model: model: {path: ..., quantization: "
    "{load_in_4bit: true, bnb_4bit_quant_type: nf4, bnb_4bit_use_double_quant: true, "
    "bnb_4bit_compute_dtype: bf16}} (what quantize: 4bit meant; 8bit: {load_in_8bit: true}); "
    "LoRA then trains over the quantized base (QLoRA)"
)


def peft_fields() -> list[str]:
    """PEFT LoraConfig's own settings, the ones a lora method may pass through."""
    from peft import LoraConfig as PeftLoraConfig

    return [f.name for f in dataclasses.fields(PeftLoraConfig) if f.init and f.name not in OWNED]


class LoraConfig(MethodConfig):
    """forgetless's defaults for the settings every LoRA sets; any other field of PEFT's `LoraConfig`
    (`modules_to_save`, `use_rslora`, `init_lora_weights`, `bias`, `layers_to_transform`...) passes
    through under its PEFT name and is checked by PEFT when the run is validated."""

    model_config = ConfigDict(extra="allow")

    name: str = "lora"
    r: int = Field(8, gt=0, description="rank of each adapter's update")
    lora_alpha: int | float = Field(
        16, gt=0, description="scale numerator: the update is multiplied by lora_alpha / r (once `alpha`)"
    )
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapter's input (once `dropout`)")
    target_modules: str | list[str] = Field(
        "all-linear", description="'all-linear' (every linear layer but the output head) or module names"
    )
    use_dora: bool = Field(False, description="DoRA: also learn a per-column magnitude (Liu et al., 2024)")

    @model_validator(mode="wrap")
    @classmethod
    def _peft_names(cls, data: Any, handler: Any) -> Any:
        """`alpha`/`dropout` become PEFT's names; any other extra key must be a field of PEFT's LoraConfig."""
        if not isinstance(data, dict):
            return handler(data)
        data, errors, renamed = dict(data), [], {}
        for old, new in ALIASES.items():
            if old in data and new in data:
                errors.append(_error((old,), f"says what {new} says (its PEFT name); give one of them", data.pop(old)))
            elif old in data:
                data[new], renamed[new] = data.pop(old), old
        if "quantize" in data:
            errors.append(_error(("quantize",), MOVED_QUANTIZE, data.pop("quantize")))
        try:
            config = handler(data)
        except ValidationError as error:
            errors += [_moved(e, renamed) for e in error.errors()]
            raise ValidationError.from_exception_data(cls.__name__, errors) from None
        extras = dict(config.model_extra or {})
        known = peft_fields() if extras else []
        for key, value in extras.items():
            if key in OWNED:
                errors.append(_error((key,), f"set by forgetless: {OWNED[key]}", value))
            elif key not in known:
                errors.append(InitErrorDetails(type="extra_forbidden", loc=(key,), input=value))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return config

    @classmethod
    def passthrough_keys(cls) -> list[str]:
        """Keys accepted beyond the declared fields (`registry.unknown_key_hint` suggests among them)."""
        return [*peft_fields(), *ALIASES]

    def peft_kwargs(self) -> dict[str, Any]:
        """PEFT LoraConfig's keywords: every setting but forgetless's `name`."""
        return {k: v for k, v in self.model_dump().items() if k != "name"}


def _error(loc: tuple[Any, ...], message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("lora", "{message}", {"message": message}), loc=loc, input=value)


def _moved(error: Any, renamed: dict[str, str]) -> InitErrorDetails:
    """A pydantic error on a renamed setting, placed back at the key the user wrote."""
    loc = error["loc"]
    if loc and loc[0] in renamed:
        loc = (renamed[str(loc[0])], *loc[1:])
    return InitErrorDetails(type=error["type"], loc=loc, input=error.get("input"), ctx=error.get("ctx", {}))


def peft_problems(config: LoraConfig) -> list[str]:
    """What PEFT's own LoraConfig says about these settings (its __post_init__ checks combinations)."""
    from peft import LoraConfig as PeftLoraConfig

    try:
        PeftLoraConfig(**config.peft_kwargs())
    except (TypeError, ValueError) as error:
        return [f"peft's LoraConfig refuses these settings: {' '.join(str(error).split())}"]
    return []


def peft_task_type(model: Any) -> str:
    """PEFT's task type for a transformers model. CAUSAL_LM wires generation and labels; SEQ_CLS keeps a
    classifier's head (`classifier`, `score`) fully trainable beside the adapters (`modules_to_save`);
    FEATURE_EXTRACTION is a bare encoder without a head. A plain nn.Module gets no task type."""
    from forgetless.models.encoder import has_classifier_head

    if has_classifier_head(model):
        return "SEQ_CLS"
    if getattr(model, "base_model", model) is model and not model.can_generate():
        return "FEATURE_EXTRACTION"
    return "CAUSAL_LM"


@METHODS.register("lora")
class Lora(Method):
    """Wraps the model with PEFT's LoRA (or DoRA) adapters; over a base loaded quantized, QLoRA.

    The model returned by `finish` is the PeftModel: `disable_adapter()` gives the base back, and
    `merge_and_unload()` folds the adapters in when a single plain checkpoint is wanted.
    """

    config_class = LoraConfig
    config: LoraConfig

    def validate(self, others: list[str]) -> list[str]:
        return peft_problems(self.config)

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model, prepare_model_for_kbit_training
        from transformers import PreTrainedModel

        cfg = self.config
        is_hf = isinstance(model, PreTrainedModel)
        if cfg.target_modules == "all-linear" and not is_hf:
            raise ForgetlessError(
                f"lora: target_modules 'all-linear' works only on transformers models, not {type(model).__name__}",
                "name the layers to adapt, e.g. target_modules: [fc1, fc2]",
            )
        if quantized_bits(model) is not None:
            # QLoRA: the base was loaded quantized (model.quantization). This casts norms to fp32 and
            # enables input gradients so checkpointed quantized layers backpropagate to the adapters.
            model = prepare_model_for_kbit_training(model)
        task_type = peft_task_type(model) if is_hf else None
        return get_peft_model(model, PeftLoraConfig(task_type=task_type, **cfg.peft_kwargs()))
