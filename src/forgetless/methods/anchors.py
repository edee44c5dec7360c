"""What the anchor regularizers (L2-SP, EWC) share: snapshots and one fused weighted distance.

Both penalties are (strength / 2) * sum_i w_i * (theta_i - anchor_i)^2 over the trainable
parameters: w = 1 for L2-SP (Li et al., ICML 2018), w = the diagonal Fisher for EWC (Kirkpatrick
et al., PNAS 2017). The sum is computed with `torch._foreach_*` kernels over the whole parameter
list (a few launches, not several per tensor), and its gradient 2 * w * (theta - anchor) is
recomputed in backward instead of saving a model-sized difference tensor across the LM backward.
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


def checked(value: torch.Tensor, method: str) -> torch.Tensor:
    """`value` if it is finite; otherwise an error naming the method, so training never adds NaN or inf."""
    if not bool(torch.isfinite(value)):
        raise ForgetlessError(
            f"the {method} penalty is {value.item()}: the weights (or the anchors) are no longer finite",
            "lower the learning rate or the method's strength; training has diverged",
        )
    return value
