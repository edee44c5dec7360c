"""`model:` in a run config: a name or path, or a mapping with how to load it (dtype, kernels, quantization).

`model: smollm2-135m` stays the short form; `model: {path: ..., dtype: bf16, quantization: {...}}` is the
long one. The resolved config writes the short form back when no loading option differs from its
default, so configs and results of earlier runs read the same.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

Dtype = Literal["auto", "bf16", "fp16", "fp32", "bfloat16", "float16", "float32"]


class QuantizationConfig(BaseModel):
    """transformers' BitsAndBytesConfig fields (unset ones keep its defaults): the base loads quantized, and
    LoRA trains over it (QLoRA). Needs bitsandbytes and a CUDA GPU."""

    model_config = ConfigDict(extra="forbid")

    load_in_4bit: bool = Field(False, description="4-bit weights (QLoRA)")
    load_in_8bit: bool = Field(False, description="8-bit weights (LLM.int8())")
    bnb_4bit_quant_type: Literal["nf4", "fp4"] | None = Field(
        None, description="4-bit data type: nf4 (QLoRA's NormalFloat) or fp4 (bitsandbytes' default)"
    )
    bnb_4bit_compute_dtype: Dtype | None = Field(None, description="dtype of the matmuls, e.g. bf16 (default fp32)")
    bnb_4bit_use_double_quant: bool | None = Field(None, description="quantize the quantization constants too")
    bnb_4bit_quant_storage: str | None = Field(None, description="storage dtype of packed 4-bit weights (uint8)")
    llm_int8_threshold: float | None = Field(None, description="8-bit outlier threshold (default 6.0)")
    llm_int8_skip_modules: list[str] | None = Field(None, description="modules kept unquantized")
    llm_int8_enable_fp32_cpu_offload: bool | None = Field(None, description="offload some modules to CPU in fp32")
    llm_int8_has_fp16_weight: bool | None = Field(None, description="keep fp16 main weights (8-bit)")

    @model_validator(mode="after")
    def _one_width(self) -> QuantizationConfig:
        if self.load_in_4bit == self.load_in_8bit:
            raise ValueError("set exactly one of load_in_4bit: true (QLoRA) or load_in_8bit: true")
        four = [n for n in type(self).model_fields if n.startswith("bnb_4bit") and getattr(self, n) is not None]
        if self.load_in_8bit and four:
            raise ValueError(f"{', '.join(four)} apply to 4-bit loading, and load_in_8bit is set")
        return self

    def fields(self) -> dict[str, Any]:
        """The fields set, as BitsAndBytesConfig takes them."""
        return self.model_dump(exclude_none=True, exclude_defaults=False)


class ModelConfig(BaseModel):
    """The model to fine-tune and how it loads (transformers' from_pretrained options)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="built-in name (smollm2-135m), local folder, .gguf file, or hub id")
    dtype: Dtype = Field("fp32", description="weights' dtype as loaded and trained; auto: the checkpoint's own")
    attn_implementation: str | None = Field(
        None, description="transformers' attention kernel: eager, sdpa, flash_attention_2 ..."
    )
    device_map: str | dict[str, Any] | None = Field(
        None, description="transformers' placement (auto, or {module: device}); default: all on `device`"
    )
    trust_remote_code: bool = Field(
        False, description="run the Python code a model folder or hub repository ships (recorded in results)"
    )
    quantization: QuantizationConfig | None = Field(
        None, description="load the base quantized by bitsandbytes (QLoRA); needs a CUDA GPU"
    )

    def is_plain(self) -> bool:
        """No loading option differs from its default: the short form `model: PATH` says it all."""
        return self.model_dump(exclude_defaults=True).keys() <= {"path"}

    def load_kwargs(self) -> dict[str, Any]:
        """`models.load_model`'s keywords for these options."""
        return {
            "dtype": self.dtype,
            "attn_implementation": self.attn_implementation,
            "device_map": self.device_map,
            "trust_remote_code": self.trust_remote_code,
            "quantization": self.quantization.fields() if self.quantization else None,
        }


def _mapping(value: Any) -> Any:
    """`model: NAME` is `model: {path: NAME}`."""
    return {"path": value} if isinstance(value, str) else value


def _short(model: ModelConfig) -> str | dict[str, Any]:
    """The short form when it says everything, else the options that differ from their defaults."""
    return model.path if model.is_plain() else model.model_dump(exclude_defaults=True)


# The run config's `model` field: read from a name or a mapping, written back as short as it can be.
ModelSpec = Annotated[
    ModelConfig, BeforeValidator(_mapping, json_schema_input_type=str | ModelConfig), PlainSerializer(_short)
]


def model_problems(data: dict[str, Any]) -> list[str]:
    """What the model's loading options need beyond their own fields: bitsandbytes and CUDA for
    quantization (checked here, before anything loads), an adapter method to train a quantized base."""
    from forgetless.models.load_options import QUANTIZE_FIX, bnb_config, quantization_problems

    model = data.get("model")
    quantization = model.get("quantization") if isinstance(model, dict) else None
    if not isinstance(quantization, dict):
        return []
    try:
        fields = QuantizationConfig(**quantization).fields()
    except ValueError:
        return []  # reported by the config's own validation
    missing = quantization_problems(fields, str(data.get("device", "auto")))
    problems = [f"model.quantization: {'; '.join(missing)}; fix: {QUANTIZE_FIX}"] if missing else []
    try:
        bnb_config(fields)
    except (TypeError, ValueError) as error:
        problems.append(f"model.quantization: transformers' BitsAndBytesConfig refuses it: {error}")
    if str(model.get("path", "")).endswith(".gguf"):
        problems.append(
            "model.quantization: a .gguf file is dequantized as it loads and cannot be quantized by bitsandbytes; "
            "point model.path at a safetensors folder or hub id"
        )
    entries = data.get("methods", [{"name": "full"}])
    names = [str(e.get("name")) for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    if "lora" not in names:
        problems.append(
            f"model.quantization: a quantized base cannot be trained itself, only adapters over it (QLoRA); "
            f"add {{name: lora}} to methods (now: {', '.join(names) or 'none'})"
        )
    return problems
