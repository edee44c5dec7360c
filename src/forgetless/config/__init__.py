"""Typed configuration of a run: defaults < YAML file < command-line overrides."""

from forgetless.config.run import DataConfig, RunConfig, StageConfig, TrainingConfig, load_run_config

__all__ = ["DataConfig", "RunConfig", "StageConfig", "TrainingConfig", "load_run_config"]
