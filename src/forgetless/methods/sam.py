"""SAM: sharpness-aware minimization, a flatter minimum for the new task.

Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for Efficiently Improving
Generalization", ICLR 2021. Each step takes the gradient g at the weights w, moves to the worst
nearby point w + e with e = rho * g / ||g|| (the L2 norm over all trainable weights), takes the
gradient there, moves back to w, and lets the optimizer step with that second gradient. Flat minima
change the loss of other data less when the weights move, which is why SAM is studied against
forgetting (Mehta et al., "An Empirical Investigation of the Role of Pre-training in Lifelong
Learning", 2021). `adaptive` is ASAM (Kwon et al., ICML 2021): e scales with |w|, so the radius is
relative to each weight's size.

The defaults are ASAM at rho = 1. On the tests' tiny forgetting setup (tests/methods/forgetting_setup.py,
bench/behaviour_margins.py) SAM learns the new task as well as plain fine-tuning but does not forget
less: ASAM forgot 1.3-2.5x plain's on the arithmetic task and 0.91-0.99x on the reordered one over seeds
and CPU kernels (plain SAM, rho 0.01-0.1: 1.1-2.8x), and its final point was no flatter for the new task
(loss rise under its own ascent step 1.05x plain's). An earlier version of that setup showed ASAM at
0.75x, on a knife edge that another CPU's summation order reversed. On SmolLM2 it forgot somewhat less
than plain (bench/RESULTS.md). Flatness for the new task is not, by itself, retention of the old one;
SAM here is a knob to measure, not a default mitigation.

It costs a second forward and backward pass per step (bench/RESULTS.md has the measured ratio).
Through the trainer's `perturb` hook it composes with the other methods: autograd penalties are
part of both passes, direct ones (L2-SP, EWC) are added once after the second. It needs gradient
accumulation 1: with accumulation, the first pass of a micro-batch would see only its own share of
the gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field

from forgetless.methods.base import METHODS, Method, MethodConfig, trainable


class SAMConfig(MethodConfig):
    name: str = "sam"
    rho: float = Field(default=1.0, gt=0, description="radius of the ascent step (relative to |w| when adaptive)")
    adaptive: bool = Field(default=True, description="ASAM: scale the ascent by |w| per weight")


@METHODS.register("sam")
class SAM(Method):
    config_class = SAMConfig
    config: SAMConfig

    @torch.no_grad()
    def perturb(self, model: Any) -> Callable[[], None] | None:
        params = [p for _, p in trainable(model) if p.grad is not None]
        if not params:
            return None
        grads = [p.grad * p.abs() if self.config.adaptive else p.grad for p in params]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
        scale = self.config.rho / (norm + 1e-12)
        moves = [
            (g * p.abs() if self.config.adaptive else g) * scale.to(g.dtype) for g, p in zip(grads, params, strict=True)
        ]
        torch._foreach_add_(params, moves)

        @torch.no_grad()
        def restore() -> None:
            torch._foreach_sub_(params, moves)

        return restore
