"""LoRA, DoRA and QLoRA through PEFT: the base weights stay frozen, small adapters learn the new task.

LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models") adds a trainable
low-rank update B @ A (rank r, scaled by alpha / r) beside each targeted linear layer. DoRA (Liu et
al., 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation") also learns each column's magnitude.
QLoRA (Dettmers et al., 2023, "QLoRA: Efficient Finetuning of Quantized LLMs") trains the same
adapters over a base quantized to 4 (or 8) bits by bitsandbytes, on a CUDA GPU.

Forgetting is bounded because the update has rank r and the base is never written: disabling the
adapters gives the base model back exactly. The adapters themselves come from PEFT, never from here.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

import torch
from pydantic import Field

from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext

QUANTIZE_FIX = "install bitsandbytes (pip install bitsandbytes) and run on a CUDA GPU, or drop `quantize`"


class LoraConfig(MethodConfig):
    name: str = "lora"
    r: int = Field(8, gt=0, description="rank of each adapter's update")
    alpha: float = Field(16, gt=0, description="scale numerator: the update is multiplied by alpha / r")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapter's input")
    target_modules: str | list[str] = Field(
        "all-linear", description="'all-linear' (every linear layer but the output head) or module names"
    )
    use_dora: bool = Field(False, description="DoRA: also learn a per-column magnitude (Liu et al., 2024)")
    quantize: Literal[None, "4bit", "8bit"] = Field(
        None, description="QLoRA: the base model must be loaded quantized by bitsandbytes (see `quantization`)"
    )


def quantize_problems(quantize: str | None) -> list[str]:
    """Why QLoRA cannot run here (no bitsandbytes, no CUDA GPU); empty when it can or is not asked for."""
    if quantize is None:
        return []
    problems = []
    if not _has_bitsandbytes():
        problems.append(f"lora: quantize '{quantize}' needs the bitsandbytes package, which is not installed")
    if not torch.cuda.is_available():
        problems.append(f"lora: quantize '{quantize}' needs a CUDA GPU (bitsandbytes kernels), and none is visible")
    return problems


def _has_bitsandbytes() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def quantization(quantize: Literal["4bit", "8bit"]) -> Any:
    """The `quantization_config` to pass to `from_pretrained` so the base loads ready for QLoRA.

    4-bit uses the QLoRA paper's recipe: NF4 weights, double quantization, bfloat16 compute.
    """
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


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


def _loaded_bits(model: Any) -> str | None:
    if getattr(model, "is_loaded_in_4bit", False):
        return "4bit"
    if getattr(model, "is_loaded_in_8bit", False):
        return "8bit"
    return None


@METHODS.register("lora")
class Lora(Method):
    """Wraps the model with PEFT's LoRA (or DoRA) adapters; with `quantize`, QLoRA over a quantized base.

    The model returned by `finish` is the PeftModel: `disable_adapter()` gives the base back, and
    `merge_and_unload()` folds the adapters in when a single plain checkpoint is wanted.
    """

    config_class = LoraConfig
    config: LoraConfig

    def validate(self, others: list[str]) -> list[str]:
        return [f"{p}; fix: {QUANTIZE_FIX}" for p in quantize_problems(self.config.quantize)]

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model, prepare_model_for_kbit_training
        from transformers import PreTrainedModel

        cfg = self.config
        if problems := quantize_problems(cfg.quantize):
            raise ForgetlessError("; ".join(problems), QUANTIZE_FIX)
        is_hf = isinstance(model, PreTrainedModel)
        if cfg.target_modules == "all-linear" and not is_hf:
            raise ForgetlessError(
                f"lora: target_modules 'all-linear' works only on transformers models, not {type(model).__name__}",
                "name the layers to adapt, e.g. target_modules: [fc1, fc2]",
            )
        if cfg.quantize is not None:
            # The model is already loaded when methods run: quantizing it now would need a second copy
            # in memory, so the loader must have quantized it (from_pretrained(quantization_config=...)).
            loaded = _loaded_bits(model)
            if loaded != cfg.quantize:
                raise ForgetlessError(
                    f"lora: quantize '{cfg.quantize}' but the model was loaded {loaded or 'unquantized'}",
                    f"load the base with quantization_config=forgetless.methods.lora.quantization('{cfg.quantize}')",
                )
            # Casts norms to fp32 and enables input grads so checkpointed quantized layers backpropagate.
            model = prepare_model_for_kbit_training(model)
        peft_config = PeftLoraConfig(
            task_type=peft_task_type(model) if is_hf else None,
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=cfg.target_modules,
            use_dora=cfg.use_dora,
        )
        return get_peft_model(model, peft_config)
