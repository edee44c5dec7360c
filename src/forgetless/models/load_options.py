"""How a causal LM loads: dtype, attention kernel, placement, the model's own code, bitsandbytes quantization.

Quantized loading (QLoRA's 4-bit NF4 base, Dettmers et al. 2023, or LLM.int8()) needs the bitsandbytes
package and a CUDA GPU; both are checked before anything loads (`quantization_problems`), so a config
that cannot run here stops with the fix instead of a traceback from inside the loader. A model loaded
quantized is scored as loaded; its weights cannot be written back in full precision (`quantized_bits`).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from forgetless.errors import ForgetlessError

# Names a config may use for a dtype -> torch's; "auto" keeps the checkpoint's own (config.json's dtype).
DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}
QUANTIZE_FIX = (
    'install bitsandbytes (pip install "forgetless[qlora]") and run on a CUDA GPU, '
    "or drop model.quantization (and train the full-precision model)"
)


def resolve_dtype(name: str) -> torch.dtype | str:
    """torch's dtype for `name` (fp32, bf16, fp16, their long names), or "auto"."""
    if name == "auto":
        return "auto"
    if name not in DTYPES:
        raise ForgetlessError(f"unknown dtype '{name}'", f"use one of: {', '.join([*DTYPES, 'auto'])}")
    return DTYPES[name]


def has_bitsandbytes() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def quantization_problems(quantization: dict[str, Any] | None, device: str = "auto") -> list[str]:
    """Why `quantization` (BitsAndBytesConfig fields) cannot load here: no bitsandbytes, no CUDA GPU, a CPU
    device. Empty when it can, or when nothing is to be quantized."""
    if not quantization:
        return []
    bits = "4-bit" if quantization.get("load_in_4bit") else "8-bit"
    problems = []
    if not has_bitsandbytes():
        problems.append(f"loading the model in {bits} needs the bitsandbytes package, which is not installed")
    if not torch.cuda.is_available():
        problems.append(f"loading the model in {bits} needs a CUDA GPU (bitsandbytes' kernels), and none is visible")
    elif device == "cpu" or device.startswith("cpu:"):
        problems.append(f"loading the model in {bits} needs a CUDA device, and device is '{device}'")
    return problems


def bnb_config(quantization: dict[str, Any]) -> Any:
    """transformers' BitsAndBytesConfig from its field values (a compute dtype may be written bf16)."""
    from transformers import BitsAndBytesConfig

    fields = dict(quantization)
    if isinstance(fields.get("bnb_4bit_compute_dtype"), str):
        fields["bnb_4bit_compute_dtype"] = resolve_dtype(fields["bnb_4bit_compute_dtype"])
    return BitsAndBytesConfig(**fields)


def quantized_bits(model: Any) -> str | None:
    """'4bit' or '8bit' for a model bitsandbytes loaded quantized (a PEFT model: its base); else None. A GGUF
    file's weights are dequantized on load, so such a model is not quantized here."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base, "is_loaded_in_4bit", False):
        return "4bit"
    if getattr(base, "is_loaded_in_8bit", False):
        return "8bit"
    return None


def quantized_checkpoint(spec: str) -> str | None:
    """The quantization method a local model folder's config.json declares (bitsandbytes, gptq, awq...), read
    before loading; None for a plain folder, a GGUF file (dequantized on load), or what is not a local folder."""
    import json
    from pathlib import Path

    config = Path(spec).expanduser() / "config.json"
    try:
        declared = (
            json.loads(config.read_text(encoding="utf-8")).get("quantization_config") if config.is_file() else None
        )
    except (OSError, ValueError, AttributeError):
        return None  # an unreadable config is the loader's to report
    if not isinstance(declared, dict):
        return None
    method = str(declared.get("quant_method", "quantized"))
    return None if method == "gguf" else method


def from_pretrained_kwargs(
    attn_implementation: str | None,
    device_map: str | dict[str, Any] | None,
    trust_remote_code: bool,
    quantization: dict[str, Any] | None,
    device: torch.device,
) -> dict[str, Any]:
    """The model's `from_pretrained` keywords for these options (only those set)."""
    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    if quantization:
        kwargs["quantization_config"] = bnb_config(quantization)
        # bitsandbytes places weights as it quantizes them; a quantized model cannot be moved after.
        here = device.index if device.index is not None else torch.cuda.current_device()
        kwargs["device_map"] = device_map if device_map is not None else {"": here}
    elif device_map is not None:
        kwargs["device_map"] = device_map
    return kwargs
