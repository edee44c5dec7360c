"""forgetless's methods on a plain nn.Module classifier: Fisher, EWC hooks, distillation, replay draws (hand values)."""

from __future__ import annotations

import math

import pytest
import torch

from forgetless.methods import TrainContext, trainable
from forgetless.methods.distill import Distill, DistillConfig, distillation_kl
from forgetless.methods.ewc import EWC, EWCConfig, fisher_from_batches, fisher_loss
from forgetless.methods.replay import replay_draw


def zero_linear() -> torch.nn.Linear:
    """logits = W x with W = 0: softmax is uniform, so dCE/dW = (1/2 - onehot(y)) x^T by hand."""
    layer = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
    return layer


X1, Y1 = torch.tensor([[1.0, 2.0]]), torch.tensor([0])  # grad [[-0.5, -1], [0.5, 1]]
X2, Y2 = torch.tensor([[2.0, 0.0]]), torch.tensor([1])  # grad [[1, 0], [-1, 0]]


def test_fisher_is_the_mean_squared_batch_gradient() -> None:
    model = zero_linear()
    per_example = fisher_from_batches(model, trainable(model), [(X1, Y1), (X2, Y2)], fisher_loss("empirical", 0))
    # mean of [[0.25, 1], [0.25, 1]] and [[1, 0], [1, 0]]
    torch.testing.assert_close(per_example["weight"], torch.tensor([[0.625, 0.5], [0.625, 0.5]]))
    # One batch of both: the gradient of the mean loss is [[0.25, -0.5], [-0.25, 0.5]], squared (Avalanche's estimate).
    one_batch = fisher_from_batches(
        model, trainable(model), [(torch.cat([X1, X2]), torch.cat([Y1, Y2]))], fisher_loss("empirical", 0)
    )
    torch.testing.assert_close(one_batch["weight"], torch.tensor([[0.0625, 0.25], [0.0625, 0.25]]))
    assert model.weight.grad is None  # autograd.grad: the training loop's .grad are left alone
    assert model.training


def test_sampled_fisher_repeats_with_its_seed_and_needs_batches() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 2, generator=gen), torch.zeros(4, dtype=torch.long)) for _ in range(3)]
    a = fisher_from_batches(model, trainable(model), batches, fisher_loss("sampled", 7))
    b = fisher_from_batches(model, trainable(model), batches, fisher_loss("sampled", 7))
    assert all(torch.equal(a[n], b[n]) and (a[n] >= 0).all() for n in a)
    c = fisher_from_batches(model, trainable(model), batches, fisher_loss("sampled", 8))
    assert not all(torch.equal(a[n], c[n]) for n in a)  # another seed draws other labels
    with pytest.raises(ValueError, match="no batches"):
        fisher_from_batches(model, trainable(model), [], fisher_loss("empirical", 0))


def test_ewc_on_a_classifier_uses_keep_batches() -> None:
    model = zero_linear()
    ewc = EWC(EWCConfig(lam=2.0, normalize="none"))
    ewc.prepare_model(model, TrainContext(tokenizer=None, keep_batches=[(X1, Y1), (X2, Y2)]))
    fisher = torch.tensor([[0.625, 0.5], [0.625, 0.5]])
    torch.testing.assert_close(ewc.fisher["weight"], fisher)
    assert ewc.penalty(model, X1, model(X1)).item() == 0.0
    with torch.no_grad():
        model.weight.add_(torch.tensor([[1.0, 0.0], [0.0, -2.0]]))
    # (lam / 2) * sum F d^2 = 1 * (0.625 * 1 + 0.5 * 4)
    assert ewc.penalty(model, X1, model(X1)).item() == pytest.approx(2.625)
    model.weight.grad = torch.zeros(2, 2)
    assert ewc.add_penalty_grad(1.0).item() == pytest.approx(2.625)
    torch.testing.assert_close(model.weight.grad, torch.tensor([[1.25, 0.0], [0.0, -2.0]]))  # lam * F * d


def test_distillation_kl_by_hand() -> None:
    student, teacher = torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]])
    # T = 1: KL([3/4, 1/4] || [1/2, 1/2]) = 0.75 ln 1.5 + 0.25 ln 0.5
    assert distillation_kl(student, teacher, 1.0).item() == pytest.approx(0.130812036, rel=1e-6)
    # T = 2: teacher softmax(ln3 / 2, 0) = [0.634, 0.366]; times T^2 = 4
    assert distillation_kl(student, teacher, 2.0).item() == pytest.approx(0.145363131, rel=1e-6)
    # A masked-out row does not count; the mean is over the rows that do.
    padded_s, padded_t = torch.cat([student, torch.tensor([[5.0, -5.0]])]), torch.cat([teacher, torch.zeros(1, 2)])
    kl = distillation_kl(padded_s, padded_t, 1.0, mask=torch.tensor([1, 0]))
    assert kl.item() == pytest.approx(0.130812036, rel=1e-6)


def test_distill_method_on_a_plain_module() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    distill = Distill(DistillConfig(weight=2.0, temperature=2.0))
    model = distill.prepare_model(model, TrainContext(tokenizer=None))
    x = torch.randn(5, 4)
    assert distill.penalty(model, x, model(x)).item() == 0.0
    with torch.no_grad():
        model[2].bias.add_(torch.tensor([1.0, 0.0, -1.0]))
    expected = 2.0 * distillation_kl(model(x), distill.teacher(x), 2.0)
    assert distill.penalty(model, x, model(x)).item() == pytest.approx(expected.item()) and expected > 0


def test_replay_draw_counts_and_cycles() -> None:
    pool = ["a", "b", "c"]
    drawn = replay_draw(pool, new=4, ratio=0.5, seed=0)  # 4 * 0.5 / 0.5 = 4 replayed: the pool once, then again
    assert len(drawn) == 4 and sorted(drawn[:3]) == pool and drawn[3] == drawn[0]
    assert len(replay_draw(pool, new=6, ratio=0.25, seed=0)) == 2  # 6 * 0.25 / 0.75
    assert replay_draw(pool, new=6, ratio=0.25, seed=1) == replay_draw(pool, new=6, ratio=0.25, seed=1)
    assert replay_draw([], new=6, ratio=0.5, seed=0) == []
