"""Mitigations: one per file, registered by name in METHODS, composable in a list."""

from forgetless.methods import distill, ewc, full, l2sp, replay, wise  # noqa: F401  (registers the methods)
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext, trainable

__all__ = ["METHODS", "Method", "MethodConfig", "TrainContext", "trainable"]
