"""Hugging Face names in a run config: `training.args` (TrainingArguments), PEFT's LoRA fields, `model:` loading
options and quantization; each mistake is reported with its config path, all at once, before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.config import load_run_config
from forgetless.errors import ConfigError, ForgetlessError
from tests.test_run import write_config

runner = CliRunner()


def problems_of(config: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_run_config(config)
    return str(caught.value)


def test_training_args_pass_through_and_twins_move_to_forgetless_settings(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    args = {"gradient_accumulation_steps": 2, "lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "max_steps": 4}
    args |= {"adam_beta2": "0.98", "gradient_checkpointing": True, "run_name": "mine", "logging_dir": "tb"}
    config = write_config(tmp_path, tiny_model, tiny_suite, training={"learning_rate": 1e-3, "args": args})
    loaded, _ = load_run_config(config)
    training = loaded.training
    # The Hugging Face spelling of a forgetless setting becomes that setting (one home per fact).
    assert (training.steps, training.gradient_accumulation, training.warmup_steps) == (4, 2, 0.1)
    # Everything else passes through; a number YAML read as a string is parsed; a path is read from the file's folder.
    assert training.args == {
        "lr_scheduler_type": "cosine",
        "adam_beta2": 0.98,
        "gradient_checkpointing": True,
        "run_name": "mine",
        "logging_dir": str(tmp_path / "tb"),
    }


def test_training_args_errors_name_the_field_and_come_all_at_once(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    args = {
        "lr_scheduler_type": "cosin",
        "max_steps": 20,
        "per_device_train_batch_size": 0,
        "lr_sheduler_kwargs": {},
        "num_train_epochs": 3,
        "output_dir": "x",
        "adam_beta1": "high",
        "warmup_ratio": 2,
    }
    training = {"steps": 10, "max_steps": 5, "lr_scheduler_type": "cosine", "args": args}
    config = write_config(tmp_path, tiny_model, tiny_suite, training=training, gradient_accumulation_steps=4)
    text = problems_of(config)
    for expected in [
        "training.args.max_steps: says what training.steps says; give one of them (got 20)",
        "training.args.per_device_train_batch_size: Input should be greater than 0 (got 0)",
        "training.args.warmup_ratio: a fraction of the steps, at least 0 and below 1 (got 2)",
        "training.args.lr_sheduler_kwargs: not a field of transformers.TrainingArguments",
        "did you mean 'lr_scheduler_kwargs'?",
        "training.args.num_train_epochs: forgetless trains a number of optimizer steps",
        "training.args.output_dir: forgetless writes each stage's checkpoints in its own folder",
        "training.args.adam_beta1: Input should be a valid number",
        "training.max_steps: Extra inputs are not permitted (got 5); did you mean 'training.args.max_steps' "
        "(or training.steps, the same setting)?",
        "training.lr_scheduler_type: Extra inputs are not permitted (got 'cosine'); "
        "did you mean 'training.args.lr_scheduler_type'?",
        "gradient_accumulation_steps: Extra inputs are not permitted (got 4); "
        "did you mean 'training.args.gradient_accumulation_steps'",
    ]:
        assert expected in text, expected
    # With the settings right one by one, TrainingArguments itself judges the values, at the key it refuses.
    args = {"lr_scheduler_type": "cosin", "optim": "adamw_torch"}
    config = write_config(tmp_path, tiny_model, tiny_suite, training={"args": args})
    assert (
        "training.args.lr_scheduler_type: cosin is not a valid SchedulerType, please select one of ['linear', "
        in problems_of(config)
    )


def test_a_field_needing_a_missing_package_says_so(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("transformers")
    if __import__("importlib").util.find_spec("deepspeed") is not None:
        pytest.skip("deepspeed is installed here")
    config = write_config(tmp_path, tiny_model, tiny_suite, training={"args": {"deepspeed": {"train_batch_size": 8}}})
    assert "training.args.deepspeed: needs a package that is not installed" in problems_of(config)


def test_an_override_wins_over_the_other_spelling_in_the_file(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    config = write_config(tmp_path, tiny_model, tiny_suite, training={"args": {"max_steps": 9}})
    assert load_run_config(config, ["training.steps=3"])[0].training.steps == 3
    config = write_config(tmp_path, tiny_model, tiny_suite, training={"steps": 9})
    assert load_run_config(config, ["training.args.max_steps=2"])[0].training.steps == 2


def test_lora_settings_use_peft_names_and_peft_checks_them(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    stages = [{"name": "new", "data": {"source": "new.jsonl"}}]
    methods = [{"name": "lora", "alpha": 8, "lora_alfa": 3, "quantize": "4bit", "use_dora": True, "lora_bias": True}]
    config = write_config(tmp_path, tiny_model, tiny_suite, methods=methods, stages=stages)
    text = problems_of(config)
    assert "methods.0.lora_alfa: Extra inputs are not permitted (got 3); did you mean 'lora_alpha'?" in text
    assert "methods.0.quantize: moved: the base is quantized as it loads, so say it on the model" in text
    methods = [{"name": "lora", "alpha": 8, "use_dora": True, "lora_bias": True}]
    config = write_config(tmp_path, tiny_model, tiny_suite, methods=methods, stages=stages)
    assert "methods.0 (lora): peft's LoraConfig refuses these settings: The argument lora_bias=True" in problems_of(
        config
    )


def test_model_mapping_keeps_the_short_form_when_it_says_everything(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    from forgetless.pipeline.run import resolved

    config = write_config(tmp_path, tiny_model, tiny_suite, model={"path": str(tiny_model)})
    loaded, methods = load_run_config(config)
    assert resolved(loaded, methods)["model"] == str(tiny_model)  # as earlier runs recorded it
    config = write_config(tmp_path, tiny_model, tiny_suite, model={"path": str(tiny_model), "dtype": "bf16"})
    loaded, methods = load_run_config(config)
    assert resolved(loaded, methods)["model"] == {"path": str(tiny_model), "dtype": "bf16"}
    config = write_config(tmp_path, tiny_model, tiny_suite, model={"path": str(tiny_model), "load_in_4bit": True})
    assert "model.load_in_4bit: Extra inputs are not permitted (got True); did you mean " in problems_of(config)
    assert "did you mean 'model.quantization.load_in_4bit'?" in problems_of(config)


def test_bf16_model_loads_in_bf16_with_trust_remote_code_recorded(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    from forgetless.models import load_model

    config = write_config(tmp_path, tiny_model, tiny_suite, model={"path": str(tiny_model), "dtype": "bf16"})
    loaded, _ = load_run_config(config)
    lm = load_model(loaded.model.path, device="cpu", **loaded.model.load_kwargs())  # as pipeline.run loads it
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    assert lm.describe()["dtype"] == "bfloat16" and lm.describe()["trust_remote_code"] is False


def test_quantization_without_cuda_or_bitsandbytes_stops_before_loading(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    from forgetless.models import load_model

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: QLoRA can load here")
    quantization = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "bf16"}
    model = {"path": str(tiny_model), "quantization": quantization}
    stages = [{"name": "new", "data": {"source": "new.jsonl"}}]
    config = write_config(tmp_path, tiny_model, tiny_suite, model=model, methods=[{"name": "full"}], stages=stages)
    text = problems_of(config)
    assert "model.quantization: loading the model in 4-bit needs " in text
    assert "loading the model in 4-bit needs a CUDA GPU (bitsandbytes' kernels), and none is visible" in text
    assert 'fix: install bitsandbytes (pip install "forgetless[qlora]") and run on a CUDA GPU' in text
    assert "model.quantization: a quantized base cannot be trained itself, only adapters over it (QLoRA)" in text
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 2 and "needs a CUDA GPU" in result.output
    # The library function refuses the same way, before transformers reads a byte.
    with pytest.raises(ForgetlessError, match="needs a CUDA GPU") as caught:
        load_model(str(tmp_path / "no-such-folder"), device="cpu", quantization=quantization)
    assert "does not exist" not in str(caught.value)
    config = write_config(tmp_path, tiny_model, tiny_suite, model={"path": str(tiny_model), "quantization": {}})
    assert "model.quantization: Value error, set exactly one of load_in_4bit: true (QLoRA) or load_in_8bit" in (
        problems_of(config)
    )


def test_an_override_under_the_short_model_form() -> None:
    from forgetless.config.run import apply_override
    from forgetless.errors import ForgetlessError

    data = {"model": "smollm2-135m", "suite": "quick"}
    apply_override(data, "model.dtype=bf16")  # `model: NAME` is short for {path: NAME}
    assert data["model"] == {"path": "smollm2-135m", "dtype": "bf16"}
    with pytest.raises(ForgetlessError, match="'suite' is a value \\('quick'\\), not a section"):
        apply_override(data, "suite.limit=3")
