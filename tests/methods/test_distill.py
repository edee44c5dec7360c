"""Distillation to the base: zero at the start, positive after drift, forgets less than plain."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from forgetless.methods import TrainContext
from tests.methods.forgetting_setup import fine_tune_new, make


def batch(tokenizer):  # noqa: ANN001, ANN201
    enc = tokenizer(["1 + 2 = 3 ;", "The cat sees a red ball."], return_tensors="pt", padding=True)
    return dict(enc)


def test_penalty_zero_at_base_and_grows(old_base) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(old_base)
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(old_base)
    distill = make("distill", temperature=1.0)
    model = distill.prepare_model(model, TrainContext(tokenizer=tok))
    inputs = batch(tok)
    assert distill.penalty(model, inputs, model(**inputs)).item() == 0.0
    values = []
    for eps in (0.01, 0.05):
        with torch.no_grad():
            model.lm_head.weight.add_(torch.randn_like(model.lm_head.weight) * eps)
        values.append(distill.penalty(model, inputs, model(**inputs)).item())
    assert 0 < values[0] < values[1]


def test_padding_positions_do_not_count(old_base) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(old_base)
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(old_base)
    distill = make("distill")
    distill.prepare_model(model, TrainContext(tokenizer=tok))
    with torch.no_grad():
        model.lm_head.weight.add_(0.05)
    inputs = dict(tok(["1 + 2 = 3 ;"], return_tensors="pt"))
    alone = distill.penalty(model, inputs, model(**inputs))
    padded = dict(tok(["1 + 2 = 3 ;"], return_tensors="pt", padding="max_length", max_length=12))
    assert padded["attention_mask"].sum() < padded["attention_mask"].numel()  # there is padding
    torch.testing.assert_close(distill.penalty(model, padded, model(**padded)), alone, rtol=1e-4, atol=1e-6)


def test_lora_must_come_first() -> None:
    distill = make("distill")
    assert distill.validate(["distill", "lora"]) and not distill.validate(["lora", "distill"])


def test_distill_forgets_less(old_base, plain, tmp_path) -> None:  # noqa: ANN001
    # Measured over seeds 0-2 and the CPU kernel settings (bench/behaviour_margins.py):
    # forgetting 0.13-0.29x plain's, gain 0.88-0.91x.
    outcome = fine_tune_new(old_base, [make("distill", weight=1.0)], tmp_path)
    assert outcome.forgetting < 0.7 * plain.forgetting
    assert outcome.gain > 0.3 * plain.gain
