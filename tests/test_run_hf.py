"""A run configured in Hugging Face's terms reaches Trainer, PEFT and from_pretrained as written."""

from __future__ import annotations

import json

import pytest
import yaml

from forgetless.config import load_run_config
from forgetless.pipeline.run import run
from tests.test_run import write_config


def test_training_args_lora_fields_and_dtype_reach_the_libraries(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    args = {"gradient_accumulation_steps": 2, "lr_scheduler_type": "cosine", "warmup_ratio": 0.1}
    config = write_config(
        tmp_path,
        tiny_model,
        tiny_suite,
        model={"path": str(tiny_model), "dtype": "bf16"},
        methods=[{"name": "lora", "r": 4, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"]}],
        training={"steps": 6, "learning_rate": 5e-3, "batch_size": 4, "max_length": 48, "save_steps": 6, "args": args},
        stages=[{"name": "new", "data": {"source": "new.jsonl", "held_out": 16}}],
        guard={"watch": False},
        diagnostics={"drift": False, "importance": False, "interference": False},
    )
    loaded, methods = load_run_config(config)
    result = run(loaded, methods, config.parent)
    out = tmp_path / "run"
    ran = result["stages"][0]["training"]["args"]
    assert (ran["gradient_accumulation_steps"], ran["lr_scheduler_type"], ran["warmup_steps"]) == (2, "cosine", 0.1)
    assert ran["logging_dir"] == str(out / "logs" / "stage-1-new")  # not checkpoints/runs/<date>_<host>
    state = json.loads((out / "stage-1-new" / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    # 6 steps of 4 examples x 2 accumulated micro-batches over the 64 training texts: 0.75 epochs (0.375 with 1).
    assert state["epoch"] == pytest.approx(6 * 4 * 2 / 64)
    rates = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]
    # Cosine after ceil(0.1 * 6) = 1 warmup step: falling every step from the peak (constant would stay flat).
    assert len(rates) == 6 and max(rates) <= 5e-3
    peak = rates.index(max(rates))
    assert all(later < earlier for earlier, later in zip(rates[peak:], rates[peak + 1 :], strict=False))
    assert rates[-1] < 0.5 * max(rates)
    adapter = json.loads((out / "stage-1-new" / "model" / "adapter_config.json").read_text())
    assert adapter["lora_alpha"] == 32 and adapter["r"] == 4 and set(adapter["target_modules"]) == {"q_proj", "v_proj"}
    model = result["baseline"]["model"]
    assert model["dtype"] == "bfloat16" and model["trust_remote_code"] is False
    assert result["stages"][0]["model"]["dtype"] == "bfloat16"
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["model"] == {"path": str(tiny_model), "dtype": "bf16"}
    assert resolved["training"]["gradient_accumulation"] == 2 and resolved["training"]["warmup_steps"] == 0.1
    assert resolved["training"]["args"] == {"lr_scheduler_type": "cosine"}
    assert resolved["methods"][0]["lora_alpha"] == 32
