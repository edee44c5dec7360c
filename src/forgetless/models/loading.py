"""Resolve a model spec (built-in name, folder, .gguf file, PEFT adapter, hub id) and load it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from forgetless.errors import ForgetlessError
from forgetless.models.checks import NO_REMOTE_CODE, check_model_folder, check_weight_files, read_config_json
from forgetless.models.default import BUILTIN_NAMES, default_model_folder
from forgetless.models.load_options import (
    QUANTIZE_FIX,
    from_pretrained_kwargs,
    quantization_problems,
    quantized_bits,
    resolve_dtype,
)

OFFLINE_HINT = (
    "check the name; hub ids need a network connection. Offline, pass a local folder, a .gguf file, "
    f"or the built-in model '{BUILTIN_NAMES[0]}'"
)


@dataclass
class LoadedModel:
    """A causal LM ready for scoring, with where it came from and a content fingerprint."""

    model: Any
    tokenizer: Any
    spec: str
    source: str  # builtin | folder | gguf | adapter | hub
    details: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def fingerprint(self) -> str:
        """Hash of every weight and of the tokenizer: equal fingerprints score identically."""
        digest = hashlib.blake2b(digest_size=16)
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            # As a plain tensor: bitsandbytes' packed 4-bit parameters override moving between devices.
            data = tensor.detach().as_subclass(torch.Tensor).cpu().contiguous().reshape(-1)
            digest.update(data.view(torch.uint8).numpy().tobytes())
        vocab = sorted(self.tokenizer.get_vocab().items())
        digest.update(json.dumps(vocab).encode())
        return digest.hexdigest()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "source": self.source, "fingerprint": self.fingerprint, **self.details}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ForgetlessError(f"device '{device}' asked for, but no CUDA GPU is visible", "use --device cpu")
    return torch.device(device)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or Path(spec).exists()


def _from_pretrained(
    location: str | Path, dtype: torch.dtype | str, load: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[Any, Any]:
    """Tokenizer and model at `location`; `load` holds the model's own keywords (quantization, placement...)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    load = load or {}
    remote = {"trust_remote_code": True} if load.get("trust_remote_code") else {}
    tokenizer = AutoTokenizer.from_pretrained(location, **kwargs, **remote)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs, **load)
    return model, tokenizer


def _load_weights(
    spec: str, dtype: torch.dtype | str, base: str | None, load: dict[str, Any] | None = None
) -> tuple[Any, Any, str, dict]:
    load = load or {}
    if spec in BUILTIN_NAMES:
        model, tok = _from_pretrained(default_model_folder(), dtype, load)
        return model, tok, "builtin", {"name": "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized)"}
    if _looks_like_path(spec):
        path = Path(spec).expanduser()
        if not path.exists():
            raise ForgetlessError(f"model path '{spec}' does not exist", "check the path, or pass a hub id")
        if path.is_file():
            if "quantization_config" in load:
                raise ForgetlessError(
                    f"'{spec}' is a GGUF file, which transformers dequantizes as it loads; bitsandbytes cannot "
                    "quantize it again in the same load",
                    "point model.path at a safetensors folder (or hub id) of the model, or drop model.quantization",
                )
            if path.suffix != ".gguf":
                raise ForgetlessError(
                    f"model file '{spec}' is not a .gguf file",
                    "pass a model folder (with config.json), a .gguf file or an adapter folder",
                )
            try:
                model, tok = _from_pretrained(path.parent, dtype, load, gguf_file=path.name)
            except Exception as error:  # the GGUF reader raises many types; all mean "cannot read"
                raise ForgetlessError(
                    f"transformers could not read the GGUF file '{spec}': {error}",
                    "check that the file is complete and that its architecture is one transformers' "
                    "GGUF loader supports (llama, mistral, qwen2, gemma3, ...), or convert it to a folder",
                ) from error
            model.hf_quantizer = None  # weights are dequantized; let the model be saved later
            return model, tok, "gguf", {}
        if (path / "adapter_config.json").is_file():
            return _load_adapter(path, dtype, base, load)
        if not (path / "config.json").is_file():
            raise ForgetlessError(
                f"folder '{spec}' has neither config.json (a model) nor adapter_config.json (a PEFT adapter)",
                "point --model at a folder written by save_pretrained",
            )
        if load.get("trust_remote_code"):
            check_weight_files(path)  # the user allowed the folder's own code: only truncated files are refused
        else:
            check_model_folder(path)  # a truncated file or custom code: one clear error, not the loader's traceback
        try:
            model, tok = _from_pretrained(path, dtype, load)
        except (OSError, ValueError, SafetensorError) as error:
            raise ForgetlessError(
                f"transformers could not load the model folder '{spec}': {error}",
                "check that the folder is a complete save_pretrained folder (config.json, tokenizer and weights)",
            ) from error
        return model, tok, "folder", {}
    try:
        model, tok = _from_pretrained(spec, dtype, load)
    except OSError as error:
        raise ForgetlessError(
            f"could not load model '{spec}' from the Hugging Face hub: {error}", OFFLINE_HINT
        ) from error
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise ForgetlessError(f"hub model '{spec}' needs the Python code it ships with", NO_REMOTE_CODE) from error
    return model, tok, "hub", {}


def _load_adapter(
    path: Path, dtype: torch.dtype | str, base: str | None, load: dict[str, Any]
) -> tuple[Any, Any, str, dict]:
    from peft import PeftModel

    check_weight_files(path)
    config = read_config_json(path / "adapter_config.json")
    base_spec = base or config.get("base_model_name_or_path")
    if not base_spec:
        raise ForgetlessError(f"adapter '{path}' does not name its base model", "pass the base with --base MODEL")
    base_model, tok, _, _ = _load_weights(base_spec, dtype, None, load)
    if (path / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path)
    model = PeftModel.from_pretrained(base_model, path)
    return model, tok, "adapter", {"base": base_spec}


def load_model(
    spec: str,
    *,
    device: str = "auto",
    dtype: str = "float32",
    base: str | None = None,
    attn_implementation: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    quantization: dict[str, Any] | None = None,
) -> LoadedModel:
    """Load a causal LM for evaluation (an encoder, through `models.encoder`, when `spec` names one).

    Args:
        spec: built-in name (`smollm2-135m`, or the encoder `minilm`), local folder, `.gguf` file, PEFT adapter
            folder, or hub id.
        device: `auto`, `cpu`, `cuda`, `cuda:1`...
        dtype: `float32`, `bfloat16`, `float16` (or `fp32`, `bf16`, `fp16`), or `auto` (the checkpoint's own).
        base: base model for an adapter whose config does not name a loadable one.
        attn_implementation: transformers' attention kernel (`eager`, `sdpa`, `flash_attention_2`...).
        device_map: transformers' placement (`auto`, or {module: device}); the model is then not moved to `device`.
        trust_remote_code: run the Python code a model folder or hub repository ships (off: such a model is
            refused with the reason). Recorded in the results.
        quantization: BitsAndBytesConfig fields (`load_in_4bit`, `bnb_4bit_quant_type`...): load the weights
            quantized (QLoRA's base). Needs bitsandbytes and a CUDA GPU, checked before anything loads.
    """
    from forgetless.models.encoder import is_encoder, load_encoder

    if problems := quantization_problems(quantization, device):
        raise ForgetlessError("; ".join(problems), QUANTIZE_FIX)
    torch_dtype = resolve_dtype(dtype)
    if is_encoder(spec):  # BERT-like encoders score encoder probes (linear probes, embeddings)
        return load_encoder(spec, device=device, dtype=str(torch_dtype).removeprefix("torch."))
    target = resolve_device(device)
    load = from_pretrained_kwargs(attn_implementation, device_map, trust_remote_code, quantization, target)
    model, tokenizer, source, details = _load_weights(spec, torch_dtype, base, load)
    if "device_map" not in load:  # placed by the loader otherwise (a quantized model cannot move)
        model.to(target)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # generation batches need a pad token
    options = {"trust_remote_code": trust_remote_code}
    options |= {"attn_implementation": attn_implementation} if attn_implementation else {}
    options |= {"device_map": device_map} if device_map is not None else {}
    options |= {"quantization": {**quantization, "bits": quantized_bits(model)}} if quantization else {}
    loaded_dtype = str(getattr(model, "dtype", torch_dtype)).removeprefix("torch.")
    return LoadedModel(model, tokenizer, spec, source, {"dtype": loaded_dtype, **options, **details})


def from_memory(model: Any, tokenizer: Any, spec: str | None = None) -> LoadedModel:
    """A causal LM already in memory (a transformers model, or a PEFT model around one) and its tokenizer.

    The model stays where it is (device, dtype, train/eval mode: scoring sets eval mode itself). As
    `load_model` does, a tokenizer without a pad token gets its end-of-sequence token as one.

    Args:
        model: the model object.
        tokenizer: its tokenizer (a PEFT model does not carry one; neither does a bare transformers model).
        spec: the name results show; default the model's `name_or_path`, else its class name.
    """
    if tokenizer is None:
        raise ForgetlessError(
            f"a {type(model).__name__} in memory was passed without its tokenizer",
            "pass tokenizer=... (the one the model was trained with), or pass the model's folder or hub id",
        )
    if not hasattr(model, "parameters") or not callable(getattr(model, "state_dict", None)):
        raise ForgetlessError(
            f"cannot score a {type(model).__name__}: it is neither a model nor a path",
            "pass a transformers or PEFT model, a model folder, a .gguf file, a hub id or 'smollm2-135m'",
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # generation batches need a pad token
    name = spec or getattr(model, "name_or_path", None) or type(model).__name__
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return LoadedModel(model, tokenizer, str(name), "memory", {"dtype": dtype})
