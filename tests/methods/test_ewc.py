"""EWC: a non-negative, normalized Fisher; (lam/2) sum F d^2 exactly; online across stages; resumable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer

import forgetless.methods.ewc as ewc_module
from forgetless.errors import ForgetlessError
from forgetless.methods import TrainContext, trainable
from forgetless.methods.ewc import estimate_fisher, normalized
from tests.methods.forgetting_setup import OLD_TRAIN, fine_tune_new, make

VOCAB = 50
KEEP = ["the cat sees a red ball.", "a dog finds the old house.", "our team builds two small boats.", "x"]


class ByteTokenizer:
    """Enough of a tokenizer for EWC: encode(text, truncation, max_length) -> ids."""

    def encode(self, text: str, truncation: bool = False, max_length: int | None = None) -> list[int]:
        ids = [b % VOCAB for b in text.encode()]
        return ids[:max_length] if truncation and max_length else ids


class TinyLM(torch.nn.Module):
    """A plain MLP language model (no transformers): input_ids -> logits."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(VOCAB, 8)
        self.hidden = torch.nn.Linear(8, 16)
        self.out = torch.nn.Linear(16, VOCAB)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(self.embed(input_ids))))


def context(**kwargs: object) -> TrainContext:
    return TrainContext(tokenizer=ByteTokenizer(), keep_texts=KEEP, max_length=16, **kwargs)


def test_fisher_is_non_negative_normalized_and_depends_on_the_estimate(old_base) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(old_base)
    model = AutoModelForCausalLM.from_pretrained(old_base)
    ctx = TrainContext(tokenizer=tok, keep_texts=OLD_TRAIN[:8], max_length=64)
    named = trainable(model)
    empirical = estimate_fisher(model, named, ctx, "empirical", 8)
    sampled = estimate_fisher(model, named, ctx, "sampled", 8)
    assert set(empirical) == {n for n, _ in named}
    assert all((f >= 0).all() for f in [*empirical.values(), *sampled.values()])
    assert not all(torch.allclose(empirical[n], sampled[n]) for n in empirical)
    mean = normalized(empirical, "mean")
    total = sum(f.sum() for f in mean.values()) / sum(f.numel() for f in mean.values())
    assert total.item() == pytest.approx(1.0, rel=1e-5)
    assert max(f.max() for f in normalized(sampled, "max").values()).item() == pytest.approx(1.0)


def test_empirical_fisher_is_the_squared_gradient_of_the_lm_loss(old_base) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(old_base)
    model = AutoModelForCausalLM.from_pretrained(old_base)
    text = OLD_TRAIN[0]
    fisher = estimate_fisher(model, trainable(model), TrainContext(tokenizer=tok, keep_texts=[text]), "empirical", 1)
    ids = torch.tensor([tok.encode(text)])
    model(input_ids=ids, labels=ids).loss.backward()  # transformers' own mean next-token loss
    for name, p in model.named_parameters():
        torch.testing.assert_close(fisher[name], p.grad**2, rtol=1e-4, atol=1e-10)


def test_zero_at_anchor_quadratic_and_exact() -> None:
    model = TinyLM()
    ewc = make("ewc", lam=2.0)
    ewc.prepare_model(model, context())
    assert ewc.penalty(model, {}, None).item() == 0.0
    start = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(1)
    direction = [torch.randn_like(p) for p in start]
    values = []
    for eps in (1e-2, 2e-2):
        with torch.no_grad():
            for p, s, d in zip(model.parameters(), start, direction, strict=True):
                p.copy_(s + eps * d)
        values.append(ewc.penalty(model, {}, None))
        by_hand = (
            2.0
            / 2
            * sum((ewc.fisher[n] * (eps * d) ** 2).sum() for (n, _), d in zip(trainable(model), direction, strict=True))
        )
        assert values[-1].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert (values[1] / values[0]).item() == pytest.approx(4.0, rel=1e-4)
    values[1].backward()  # a plain module trains with it too
    assert model.out.weight.grad is not None and model.out.weight.grad.abs().sum() > 0


def test_only_trainable_parameters_enter() -> None:
    model = TinyLM()
    model.embed.requires_grad_(False)
    ewc = make("ewc")
    ewc.prepare_model(model, context())
    assert set(ewc.fisher) == {"hidden.weight", "hidden.bias", "out.weight", "out.bias"}
    with torch.no_grad():
        model.embed.weight.add_(1.0)
    assert ewc.penalty(model, {}, None).item() == 0.0


def test_online_ewc_accumulates_and_reanchors() -> None:
    model = TinyLM()
    ewc = make("ewc", gamma=0.5)
    ewc.prepare_model(model, context(stage=0))
    first = {n: f.clone() for n, f in ewc.fisher.items()}
    with torch.no_grad():
        model.out.weight.add_(0.3)  # stage 1 "training"
    ewc.end_stage(model, context(stage=0))
    ewc.prepare_model(model, context(stage=1))
    fresh = normalized(estimate_fisher(model, trainable(model), context(stage=1), "empirical", 64), "mean")
    for n, f in ewc.fisher.items():
        torch.testing.assert_close(f, fresh[n] + 0.5 * first[n])
    assert ewc.penalty(model, {}, None).item() == 0.0  # anchored again at the end of stage 1

    offline = make("ewc", online=False)
    offline.prepare_model(model, context(stage=0))
    offline.end_stage(model, context(stage=0))
    offline.prepare_model(model, context(stage=1))
    for n, f in offline.fisher.items():
        torch.testing.assert_close(f, fresh[n])


def test_saved_fisher_is_reused_on_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make("ewc")
    first.prepare_model(TinyLM(), context(state_dir=tmp_path))
    assert (tmp_path / "ewc_fisher_stage0.safetensors").is_file() and first.fisher_seconds > 0

    def no_estimate(*args: object) -> None:
        raise AssertionError("the Fisher was estimated again")

    monkeypatch.setattr(ewc_module, "estimate_fisher", no_estimate)
    resumed = make("ewc")
    resumed.prepare_model(TinyLM(), context(state_dir=tmp_path))
    assert resumed.fisher_seconds == 0.0
    for n, f in first.fisher.items():
        torch.testing.assert_close(resumed.fisher[n], f)
    with pytest.raises(AssertionError, match="estimated again"):  # other settings: not reused
        make("ewc", fisher="sampled").prepare_model(TinyLM(), context(state_dir=tmp_path))


def test_resumed_second_stage_carries_the_saved_first_stage(tmp_path: Path) -> None:
    model = TinyLM()
    first = make("ewc", gamma=0.5)
    first.prepare_model(model, context(state_dir=tmp_path, stage=0))
    with torch.no_grad():
        model.out.weight.add_(0.3)
    resumed = make("ewc", gamma=0.5)  # a new process: nothing in memory, only stage 0's file is left
    resumed.prepare_model(model, context(state_dir=tmp_path, stage=1))
    fresh = normalized(estimate_fisher(model, trainable(model), context(), "empirical", 64), "mean")
    for n, f in resumed.fisher.items():
        torch.testing.assert_close(f, fresh[n] + 0.5 * first.fisher[n])
    assert (tmp_path / "ewc_fisher_stage1.safetensors").is_file()


def test_empty_keep_texts_is_a_clear_error() -> None:
    with pytest.raises(ForgetlessError, match="context.keep_texts is empty") as info:
        make("ewc").prepare_model(TinyLM(), TrainContext(tokenizer=ByteTokenizer()))
    assert "set `keep` in the config" in str(info.value)


def test_texts_too_short_for_a_fisher_are_an_error() -> None:
    ctx = TrainContext(tokenizer=ByteTokenizer(), keep_texts=["a", "b"])
    with pytest.raises(ForgetlessError, match="shorter than two tokens"):
        make("ewc").prepare_model(TinyLM(), ctx)


def test_non_finite_penalty_raises_naming_the_method() -> None:
    model = TinyLM()
    ewc = make("ewc")
    ewc.prepare_model(model, context())
    with torch.no_grad():
        model.out.bias[0] = float("inf")
    with pytest.raises(ForgetlessError, match="the ewc penalty is inf"):
        ewc.penalty(model, {}, None)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"lam": 0.0}, "lam"),
        ({"lam": -1.0}, "lam"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"fisher": "true"}, "fisher"),
        ({"normalize": "sum"}, "normalize"),
        ({"fisher_samples": 0}, "fisher_samples"),
        ({"lamda": 1.0}, "lamda"),
    ],
)
def test_config_errors_name_the_field(settings: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        make("ewc", **settings)


def test_ewc_forgets_less(old_base, plain, tmp_path) -> None:  # noqa: ANN001
    # Measured over seeds 0-2 and the CPU kernel settings (bench/behaviour_margins.py):
    # forgetting 0.16-0.29x plain's, gain 0.99x.
    ewc = make("ewc", lam=1.0)
    outcome = fine_tune_new(old_base, [ewc], tmp_path)
    assert outcome.forgetting < 0.7 * plain.forgetting
    assert outcome.gain > 0.3 * plain.gain
    assert ewc.fisher_seconds > 0  # recorded for the overhead benchmark
