"""SAM: the ascent step has length rho along the gradient and is undone exactly; it learns like plain tuning."""

from __future__ import annotations

import pytest
import torch

from forgetless.errors import ForgetlessError
from tests.methods.forgetting_setup import fine_tune_new, make


def layer_with_grad() -> torch.nn.Linear:
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    layer(torch.randn(4, 3)).pow(2).sum().backward()
    return layer


@pytest.mark.parametrize("adaptive", [False, True])
def test_ascent_has_length_rho_and_is_undone(adaptive: bool) -> None:
    layer = layer_with_grad()
    before = [p.detach().clone() for p in layer.parameters()]
    grads = [p.grad.clone() for p in layer.parameters()]
    restore = make("sam", rho=0.1, adaptive=adaptive).perturb(layer)
    moves = [p.detach() - b for p, b in zip(layer.parameters(), before, strict=True)]
    # SAM: e = rho g / ||g||; ASAM: e = rho |w|^2 g / || |w| g ||
    scaled = [g * b.abs() for g, b in zip(grads, before, strict=True)] if adaptive else grads
    norm = torch.linalg.vector_norm(torch.cat([s.flatten() for s in scaled]))
    for move, s, b in zip(moves, scaled, before, strict=True):
        expected = 0.1 * s / norm * (b.abs() if adaptive else 1)
        torch.testing.assert_close(move, expected)
    restore()
    for p, b in zip(layer.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=1e-7)


def test_nothing_to_perturb_without_gradients() -> None:
    assert make("sam").perturb(torch.nn.Linear(2, 2)) is None


def test_sam_learns_the_new_task_as_plain_tuning_does(old_base, plain, tmp_path) -> None:  # noqa: ANN001
    # SAM is not asserted to forget less: on this setup it does not (ASAM forgot 1.3-2.0x plain's over seeds
    # 0-2 and the CPU kernel settings, up to 2.5x, bench/behaviour_margins.py; the old test's 0.75x sat on a knife
    # edge). What holds everywhere is that the second, perturbed gradient still trains: gain ratio 0.985-1.00.
    outcome = fine_tune_new(old_base, [make("sam")], tmp_path)
    assert outcome.gain > 0.9 * plain.gain
    assert outcome.old_after > outcome.old_before  # and the setup's forgetting is there to see


def test_sam_refuses_gradient_accumulation(tiny_model, tmp_path) -> None:  # noqa: ANN001
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from forgetless.train.finetune import FinetuneSettings, finetune
    from tests.conftest import sentences

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.pad_token = tok.eos_token
    settings = FinetuneSettings(steps=1, batch_size=2, max_length=16, gradient_accumulation=2)
    with pytest.raises(ForgetlessError, match="sam needs gradient accumulation 1"):
        finetune(AutoModelForCausalLM.from_pretrained(tiny_model), tok, sentences(8), tmp_path, settings, [make("sam")])


def test_validate_refuses_sam_with_accumulation(tmp_path) -> None:  # noqa: ANN001
    import yaml

    from forgetless.config.run import load_run_config
    from forgetless.errors import ConfigError

    (tmp_path / "d.txt").write_text("some text")
    config = {
        "methods": [{"name": "sam"}],
        "training": {"gradient_accumulation": 2},
        "stages": [{"name": "s", "data": {"source": "d.txt"}}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="sam needs training.gradient_accumulation: 1"):
        load_run_config(tmp_path / "c.yaml")
