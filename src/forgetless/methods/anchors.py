"""What the anchor regularizers (L2-SP, EWC) share: snapshots and one fused weighted distance.

Both penalties are (strength / 2) * sum_i w_i * (theta_i - anchor_i)^2 over the trainable
parameters: w = 1 for L2-SP (Li et al., ICML 2018), w = the diagonal Fisher for EWC (Kirkpatrick
et al., PNAS 2017). The sum is computed with `torch._foreach_*` kernels over the whole parameter
list (a few launches, not several per tensor), and its gradient 2 * w * (theta - anchor) is
recomputed in backward instead of saving a model-sized difference tensor across the LM backward.

Where the trainer allows it, `add_distance_grad` skips autograd altogether: after the LM backward it
adds the gradient into each `.grad` through one reused buffer. On a CPU, where nothing overlaps, the
autograd version's model-sized temporaries cost 0.3-0.4 s per SmolLM2-135M step; this costs about
a third of that (bench/RESULTS.md, "Training overhead").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from forgetless.errors import ForgetlessError


def snapshot(params: Sequence[torch.Tensor], dtype: torch.dtype | None = None) -> list[torch.Tensor]:
    """Detached copies of `params` on their own devices, cast to `dtype` when given (bf16 halves memory)."""
    return [p.detach().to(dtype=dtype or p.dtype, copy=True) for p in params]


def follow_devices(values: list[torch.Tensor], params: Sequence[torch.Tensor]) -> None:
    """Move each of `values` (in place in the list) to its parameter's device.

    Methods snapshot in `prepare_model`, before Trainer moves the model to the accelerator, so the
    first penalty call finds anchors on the CPU; moving them once keeps every later step local.
    """
    for i, (value, param) in enumerate(zip(values, params, strict=True)):
        if value.device != param.device:
            values[i] = value.to(param.device)


def _diffs(
    params: Sequence[torch.Tensor], anchors: Sequence[torch.Tensor], weights: Sequence[torch.Tensor] | None
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(d, w * d) with d = p - a; d promotes to the wider dtype, so float32 anchors keep bf16 weights exact."""
    diffs = torch._foreach_sub(params, anchors)
    return diffs, diffs if weights is None else torch._foreach_mul(diffs, weights)


class _WeightedSquaredDistance(torch.autograd.Function):
    """sum_i w_i (p_i - a_i)^2, whose backward recomputes 2 w (p - a) rather than keeping it alive."""

    @staticmethod
    def forward(ctx, anchors, weights, *params):  # noqa: ANN001, ANN205
        ctx.anchors, ctx.weights = anchors, weights
        ctx.devices = {p.device for p in params}
        ctx.save_for_backward(*params)
        diffs, weighted = _diffs(params, anchors, weights)
        torch._foreach_mul_(weighted, diffs)  # w * d^2 (d * d in place when w = 1): every entry >= 0
        # ...so each tensor's L1 norm is its sum, accumulated in at least float32 even for bf16 weights.
        sums = torch._foreach_norm(weighted, 1, dtype=torch.promote_types(weighted[0].dtype, torch.float32))
        if len(ctx.devices) > 1:  # a model split across devices: gather the per-tensor sums on one
            sums = [s.to(params[0].device) for s in sums]
        return torch.stack(sums).sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):  # noqa: ANN001, ANN205
        params = ctx.saved_tensors
        _, grads = _diffs(params, ctx.anchors, ctx.weights)
        scale = 2.0 * grad_output  # a tensor, so no host sync in the middle of the backward pass
        if len(ctx.devices) > 1:
            for g in grads:
                g.mul_(scale.to(g.device))
        else:
            torch._foreach_mul_(grads, scale)
        grads = [g if g.dtype == p.dtype else g.to(p.dtype) for g, p in zip(grads, params, strict=True)]
        return (None, None, *grads)


def weighted_squared_distance(
    params: Sequence[torch.Tensor],
    anchors: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """sum_i w_i * ||p_i - a_i||^2 (elementwise w), as a float32 scalar that backpropagates into `params`.

    Args:
        params: the trainable parameters, in a fixed order.
        anchors: their reference values, same order, shapes and devices.
        weights: per-entry non-negative weights (EWC's Fisher), or None for all ones (L2-SP).
    """
    if not params:
        raise ValueError("no parameters to regularize")
    return _WeightedSquaredDistance.apply(list(anchors), None if weights is None else list(weights), *params)


class _Buffers:
    """One flat scratch tensor per (device, dtype, slot), grown to the largest parameter and reused."""

    def __init__(self) -> None:
        self._flat: dict[tuple[torch.device, torch.dtype, int], torch.Tensor] = {}

    def like(self, param: torch.Tensor, dtype: torch.dtype, slot: int) -> torch.Tensor:
        key = (param.device, dtype, slot)
        flat = self._flat.get(key)
        if flat is None or flat.numel() < param.numel():
            flat = self._flat[key] = torch.empty(param.numel(), dtype=dtype, device=param.device)
        return flat[: param.numel()].view(param.shape)


BUFFERS = _Buffers()  # shared by every anchor method of the process: their steps never overlap


@torch.no_grad()
def add_distance_grad(
    params: Sequence[torch.Tensor],
    anchors: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor] | None,
    coef: float,
) -> torch.Tensor:
    """p.grad += coef * w * (p - a) for every parameter, in place; returns sum_i w_i (p_i - a_i)^2.

    This is `coef / 2` times the gradient of `weighted_squared_distance`, without autograd: the
    difference goes through one reused buffer (two with weights), so no model-sized tensor is
    allocated per step. The returned value is a float32 scalar with no graph, for logging.
    """
    if not params:
        raise ValueError("no parameters to regularize")
    total = torch.zeros((), dtype=torch.float32, device=params[0].device)
    for i, (p, a) in enumerate(zip(params, anchors, strict=True)):
        dtype = torch.promote_types(p.dtype, a.dtype)  # float32 anchors keep bf16 weights' drift exact
        diff = torch.sub(p, a, out=BUFFERS.like(p, dtype, 0))
        weighted = diff if weights is None else torch.mul(diff, weights[i], out=BUFFERS.like(p, dtype, 1))
        flat_d, flat_w = diff.view(-1), weighted.view(-1)
        if dtype not in (torch.float32, torch.float64):  # bf16 drift: sum it in float32
            flat_d, flat_w = flat_d.float(), flat_w.float()
        total += torch.dot(flat_d, flat_w).to(total.device, torch.float32)
        if p.grad is None:  # a weight the loss did not reach still feels the pull back
            p.grad = (weighted * coef).to(p.dtype)
        else:
            p.grad.add_(weighted, alpha=coef)
    return total


def checked(value: torch.Tensor, method: str) -> torch.Tensor:
    """`value` if it is finite; otherwise an error naming the method, so training never adds NaN or inf."""
    if not bool(torch.isfinite(value)):
        raise ForgetlessError(
            f"the {method} penalty is {value.item()}: the weights (or the anchors) are no longer finite",
            "lower the learning rate or the method's strength; training has diverged",
        )
    return value
