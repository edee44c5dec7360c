"""A misspelled key in a config section, a method's settings or a probe gets a did-you-mean, as names do."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from forgetless.config import load_run_config
from forgetless.errors import ConfigError
from forgetless.suites import load_suite
from tests.test_run import write_config


def test_misspelled_keys_get_the_closest_field(tiny_model: Path, tiny_suite: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        tiny_model,
        tiny_suite,
        trainig={"steps": 3},
        methods=[{"name": "replay", "ratoi": 0.3}],
        stages=[{"name": "a", "data": {"source": "old.jsonl", "helt_out": 4}}],
        guard={"zzz": 1},
    )
    with pytest.raises(ConfigError) as caught:
        load_run_config(config)
    text = str(caught.value)
    for expected in [
        "trainig: Extra inputs are not permitted (got {'steps': 3}); did you mean 'training'?",
        "methods.0.ratoi: Extra inputs are not permitted (got 0.3); did you mean 'ratio'?",
        "stages.0.data.helt_out: Extra inputs are not permitted (got 4); did you mean 'held_out'?",
        "guard.zzz: Extra inputs are not permitted (got 1); known keys: auto_values, budget, every, false_alarm, kl, "
        "overhead, policy, probes, rollback_to, sequential, watch",
    ]:
        assert expected in text, expected


def test_misspelled_probe_key_in_a_suite(mc_data: Path, tmp_path: Path) -> None:
    probe = {"name": "mc", "kind": "choice", "source": str(mc_data), "context": "{{ question }}"}
    probe |= {"choises": "{{ choices.text }}", "gold": "0"}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({"name": "mine", "probes": [probe]}))
    with pytest.raises(ConfigError) as caught:
        load_suite(str(tmp_path / "suite.yaml"))
    assert (
        "probes[0] (mc).choises: Extra inputs are not permitted (value: '{{ choices.text }}'); "
        "did you mean 'choices'?" in str(caught.value)
    )
