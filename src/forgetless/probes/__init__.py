"""Probes: one kind per file, registered by name in PROBES."""

from forgetless.probes import canary, choice, classifier, embedding, generation, linear, lmeval, perplexity  # noqa: F401  (registers)
from forgetless.probes.base import (
    PROBES,
    Comparison,
    Metric,
    Probe,
    ProbeConfig,
    ProbeResult,
    ScoreOptions,
    take_items,
)

__all__ = ["PROBES", "Comparison", "Metric", "Probe", "ProbeConfig", "ProbeResult", "ScoreOptions", "take_items"]
