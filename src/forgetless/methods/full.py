"""Plain full fine-tuning: every weight trains, nothing holds it back (the baseline to beat)."""

from __future__ import annotations

from forgetless.methods.base import METHODS, Method, MethodConfig


class FullConfig(MethodConfig):
    name: str = "full"


@METHODS.register("full")
class Full(Method):
    config_class = FullConfig
