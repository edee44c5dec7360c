"""A broken model folder is one clear error naming the file, never the loader's traceback, and never runs its code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.errors import ForgetlessError
from forgetless.models import load_model

runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())


def copy_model(tiny_model: Path, tmp_path: Path, **config: object) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    data = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**data, **config}))
    return folder


def eval_error(folder: Path) -> str:
    result = runner.invoke(app, ["eval", "--model", str(folder), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return flat(result.output)


def test_truncated_safetensors_names_the_file_and_the_sizes(tiny_model: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model, tmp_path)
    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    with weights.open("r+b") as handle:
        handle.truncate(size // 2)
    text = eval_error(folder)
    assert f"error: '{weights}' is truncated: {size // 2:,} bytes of the {size:,} its header describes" in text
    assert "fix: the download or copy was interrupted or the file is damaged: download or copy the model again" in text
    weights.write_bytes(b"\x01")
    assert f"'{weights}' is truncated: 1 bytes, not even a safetensors header" in eval_error(folder)


def test_missing_shard_is_named(tiny_model: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model, tmp_path)
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model.safetensors"}}))
    text = eval_error(folder)
    assert f"'{index}' lists weight files that are not in the folder: model-00001-of-00002.safetensors" in text


def test_custom_code_is_refused_and_never_run(tiny_model: Path, tmp_path: Path) -> None:
    auto_map = {"AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XForCausalLM"}
    folder = copy_model(tiny_model, tmp_path, model_type="xmodel", auto_map=auto_map)
    marker = tmp_path / "ran"
    for module in ("configuration_x", "modeling_x"):
        (folder / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    text = eval_error(folder)
    assert (
        f"error: the model '{folder}' cannot load: {folder / 'config.json'} has model_type 'xmodel', which transformers"
    ) in text
    assert "the folder's own code would be needed (configuration_x.py, modeling_x.py, named in auto_map)" in text
    assert "fix: upgrade transformers (`pip install -U transformers`) if 'xmodel' is newer than it" in text
    assert "forgetless never runs Python code that comes with a model (no trust_remote_code)" in text
    assert not marker.exists()


def test_unknown_model_type_without_code(tiny_model: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model, tmp_path, model_type="xmodel")
    text = eval_error(folder)
    assert "has model_type 'xmodel', which transformers" in text and "own code" not in text


def test_auto_map_beside_a_known_model_type_loads_natively(tiny_model: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model, tmp_path, auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    (folder / "modeling_x.py").write_text("raise RuntimeError('custom code ran')\n")
    assert type(load_model(str(folder), device="cpu").model).__name__ == "LlamaForCausalLM"


def test_hub_model_that_needs_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    def needs_code(*args: object, **kwargs: object) -> None:
        raise ValueError("... Please pass the argument `trust_remote_code=True` to allow custom code to be run.")

    monkeypatch.setattr("forgetless.models.loading._from_pretrained", needs_code)
    with pytest.raises(ForgetlessError) as caught:
        load_model("someone/custom-model", device="cpu")
    assert caught.value.problem == "hub model 'someone/custom-model' needs the Python code it ships with"
    assert "no trust_remote_code" in str(caught.value.fix)
