"""L2-SP: zero at the anchor, exactly (alpha/2)||theta - theta_0||^2 after drift, trainable weights only."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

import forgetless.methods.l2sp  # noqa: F401  (registers the method)
from forgetless.errors import ForgetlessError
from forgetless.methods import TrainContext
from forgetless.methods.anchors import add_distance_grad, weighted_squared_distance
from tests.methods.forgetting_setup import fine_tune_new, make

CONTEXT = TrainContext(tokenizer=None)


def known_linear() -> torch.nn.Linear:
    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0]]))
        layer.bias.copy_(torch.tensor([0.5]))
    return layer


def test_zero_at_anchor_then_exact_hand_value() -> None:
    layer = known_linear()
    l2sp = make("l2sp", alpha=0.1)
    l2sp.prepare_model(layer, CONTEXT)
    assert l2sp.penalty(layer, {}, None).item() == 0.0
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.5, 2.0]]))  # moved by 0.5
        layer.bias.copy_(torch.tensor([0.0]))  # moved by -0.5
    value = l2sp.penalty(layer, {}, None)
    assert value.item() == pytest.approx(0.1 / 2 * (0.5**2 + 0.5**2))  # = 0.025
    value.backward()  # the gradient is alpha * (theta - theta_0)
    torch.testing.assert_close(layer.weight.grad, torch.tensor([[0.05, 0.0]]))
    torch.testing.assert_close(layer.bias.grad, torch.tensor([-0.05]))


def test_penalty_is_quadratic_in_drift() -> None:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))  # not an HF model
    l2sp = make("l2sp", alpha=0.5)
    l2sp.prepare_model(mlp, CONTEXT)
    start = [p.detach().clone() for p in mlp.parameters()]
    direction = [torch.randn_like(p) for p in start]
    values = []
    for eps in (1e-2, 2e-2):
        with torch.no_grad():
            for p, s, d in zip(mlp.parameters(), start, direction, strict=True):
                p.copy_(s + eps * d)
        values.append(l2sp.penalty(mlp, {}, None).item())
        by_hand = 0.5 / 2 * sum(((eps * d) ** 2).sum().item() for d in direction)
        assert values[-1] == pytest.approx(by_hand, rel=1e-5)
    assert values[1] / values[0] == pytest.approx(4.0, rel=1e-4)


def test_only_trainable_parameters_are_anchored() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model[0].requires_grad_(False)  # e.g. frozen layers, or a base under a PEFT adapter
    l2sp = make("l2sp", alpha=1.0)
    l2sp.prepare_model(model, CONTEXT)
    assert l2sp.anchor_names == ["1.weight", "1.bias"]
    with torch.no_grad():
        model[0].weight.add_(10.0)  # a frozen weight that moved anyway does not count
    assert l2sp.penalty(model, {}, None).item() == 0.0
    with torch.no_grad():
        model[1].bias.add_(1.0)
    assert l2sp.penalty(model, {}, None).item() == pytest.approx(0.5 * 2 * 1.0)


def test_nothing_trainable_is_an_error() -> None:
    model = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ForgetlessError, match="l2sp found no trainable parameters"):
        make("l2sp").prepare_model(model, CONTEXT)


def test_bfloat16_anchors_halve_memory_and_stay_close() -> None:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Linear(16, 4))
    l2sp = make("l2sp", alpha=1.0, anchor_dtype="bfloat16")
    l2sp.prepare_model(mlp, CONTEXT)
    assert {a.dtype for a in l2sp._anchors} == {torch.bfloat16}
    # Only bf16 rounding of the anchor remains at the start: ~2^-9 relative per weight.
    squared_norm = sum((p.detach() ** 2).sum().item() for p in mlp.parameters())
    assert 0.0 < l2sp.penalty(mlp, {}, None).item() < 1e-4 * squared_norm


def test_non_finite_penalty_raises_naming_the_method() -> None:
    layer = known_linear()
    l2sp = make("l2sp")
    l2sp.prepare_model(layer, CONTEXT)
    with torch.no_grad():
        layer.weight[0, 0] = float("nan")
    with pytest.raises(ForgetlessError, match="the l2sp penalty is nan"):
        l2sp.penalty(layer, {}, None)


def test_penalty_before_prepare_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before l2sp.prepare_model"):
        make("l2sp").penalty(torch.nn.Linear(1, 1), {}, None)


def test_fused_distance_matches_a_loop_and_its_gradient() -> None:
    torch.manual_seed(0)
    params = [
        torch.randn(3, 4, dtype=torch.double, requires_grad=True),
        torch.randn(5, dtype=torch.double, requires_grad=True),
    ]
    anchors = [torch.randn_like(p) for p in params]
    weights = [torch.rand_like(p) for p in params]
    loop = sum((w * (p - a) ** 2).sum() for p, a, w in zip(params, anchors, weights, strict=True))
    torch.testing.assert_close(weighted_squared_distance(params, anchors, weights), loop)
    assert torch.autograd.gradcheck(lambda *p: weighted_squared_distance(list(p), anchors, weights), params)
    assert torch.autograd.gradcheck(lambda *p: weighted_squared_distance(list(p), anchors), params)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    ("param_dtype", "anchor_dtype"), [(torch.float32, torch.float32), (torch.bfloat16, torch.float32)]
)
def test_direct_gradient_equals_autograd(weighted: bool, param_dtype: torch.dtype, anchor_dtype: torch.dtype) -> None:
    """add_distance_grad adds coef/2 times the autograd gradient into .grad (on top of what is there, or
    into an empty .grad) and returns the same distance, for float32 and bf16 weights."""
    torch.manual_seed(0)
    params = [torch.randn(3, 4).to(param_dtype).requires_grad_(), torch.randn(5).to(param_dtype).requires_grad_()]
    anchors = [(p.detach().float() + 0.1 * torch.randn(p.shape)).to(anchor_dtype) for p in params]
    weights = [torch.rand(p.shape) for p in params] if weighted else None
    coef = 0.3
    expected_value = weighted_squared_distance(params, anchors, weights)
    expected_grads = torch.autograd.grad(expected_value, params)
    params[0].grad = torch.ones_like(params[0])  # an LM gradient already there; params[1] has none
    value = add_distance_grad(params, anchors, weights, coef)
    torch.testing.assert_close(value, expected_value.detach().float(), rtol=1e-5, atol=1e-6)
    tolerance = {"rtol": 1e-2, "atol": 1e-2} if param_dtype == torch.bfloat16 else {}
    torch.testing.assert_close(params[0].grad, 1 + coef / 2 * expected_grads[0], **tolerance)
    torch.testing.assert_close(params[1].grad, coef / 2 * expected_grads[1], **tolerance)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"anchor_dtype": "float16"}, "anchor_dtype"),
        ({"alhpa": 1}, "alhpa"),
    ],
)
def test_config_errors_name_the_field(settings: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        make("l2sp", **settings)


def test_l2sp_forgets_less(old_base, plain, tmp_path) -> None:  # noqa: ANN001
    # Measured over seeds 0-2 and the CPU kernel settings (bench/behaviour_margins.py):
    # forgetting 0.51-0.57x plain's, gain 0.99x.
    l2sp = make("l2sp", alpha=0.01)
    outcome = fine_tune_new(old_base, [l2sp], tmp_path)
    assert outcome.forgetting < 0.7 * plain.forgetting
    assert outcome.gain > 0.3 * plain.gain
