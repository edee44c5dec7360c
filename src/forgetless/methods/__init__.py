"""Mitigations: one per file, registered by name in METHODS, composable in a list."""

from forgetless.methods import (  # noqa: F401  (registers)
    distill,
    ewc,
    expand,
    freeze,
    full,
    genreplay,
    l2sp,
    llrd,
    lora,
    replay,
    sam,
    unfreeze,
    wise,
)
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext, trainable

__all__ = ["METHODS", "Method", "MethodConfig", "TrainContext", "trainable"]
