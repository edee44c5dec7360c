"""`forgetless schema` (JSON Schema with every method's and probe kind's settings), `ls methods`, `--version`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from forgetless import __version__
from forgetless.cli.main import app
from forgetless.config.schema import run_schema
from forgetless.methods import METHODS
from forgetless.probes import PROBES

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_the_run_schema_holds_every_method_and_probe_kind_with_its_settings() -> None:
    schema = run_schema()
    methods = {m["properties"]["name"]["const"]: m for m in schema["properties"]["methods"]["items"]["oneOf"]}
    assert sorted(methods) == METHODS.names()
    ewc = methods["ewc"]["properties"]
    assert ewc["lam"]["default"] == 0.1 and ewc["fisher"]["enum"] == ["empirical", "sampled"]
    lora = methods["lora"]
    # forgetless's declared fields, then PEFT's own with PEFT's help, and nothing else.
    assert lora["properties"]["lora_alpha"]["default"] == 16 and lora["additionalProperties"] is False
    assert lora["properties"]["use_rslora"]["type"] == "boolean" and "Rank-Stabilized" in str(lora["properties"])
    assert "modules_to_save" in lora["properties"] and "task_type" not in lora["properties"]
    args = schema["$defs"]["TrainingConfig"]["properties"]["args"]
    assert args["additionalProperties"] is False and "output_dir" not in args["properties"]
    assert "cosine" in json.dumps(args["properties"]["lr_scheduler_type"])
    assert {"deepspeed", "fsdp", "fsdp_config", "gradient_checkpointing", "push_to_hub", "hub_model_id"} <= set(
        args["properties"]
    )
    assert {"warmup_ratio", "logging_dir"} <= set(args["properties"])  # the names transformers 5 dropped
    assert schema["properties"]["model"]["anyOf"][0] == {"type": "string"}
    quantization = schema["$defs"]["QuantizationConfig"]["properties"]
    assert quantization["bnb_4bit_quant_type"]["anyOf"][0]["enum"] == ["nf4", "fp4"]
    probes = schema["$defs"]["Suite"]["properties"]["probes"]["items"]["oneOf"]
    assert sorted(p["properties"]["kind"]["const"] for p in probes) == PROBES.names()


def test_every_example_uses_only_keys_the_schema_knows() -> None:
    schema = run_schema()
    methods = {m["properties"]["name"]["const"]: m for m in schema["properties"]["methods"]["items"]["oneOf"]}
    training = schema["$defs"]["TrainingConfig"]["properties"]
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if "stages" not in data:
            continue  # a classify config
        assert set(data) <= set(schema["properties"]), path.name
        for method in data.get("methods", []):
            assert set(method) <= set(methods[method["name"]]["properties"]), (path.name, method)
        assert set(data.get("training", {})) <= set(training), path.name
        assert set(data.get("training", {}).get("args", {})) <= set(training["args"]["properties"]), path.name


def test_schema_command_ls_methods_and_version(tmp_path) -> None:  # noqa: ANN001
    result = runner.invoke(app, ["schema", "--out", str(tmp_path / "run.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run.json").read_text()) == json.loads(json.dumps(run_schema()))
    suite = runner.invoke(app, ["schema", "suite"])
    assert suite.exit_code == 0 and json.loads(suite.output)["title"] == "forgetless suite"
    assert "unknown schema 'runs'" in runner.invoke(app, ["schema", "runs"]).output
    listing = runner.invoke(app, ["ls", "methods"], terminal_width=200)
    assert listing.exit_code == 0
    for expected in ["lam", "0.1", "lora_alpha", "any other field of peft.LoraConfig", "target_modules"]:
        assert expected in listing.output, expected
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.strip() == f"forgetless {__version__}"
