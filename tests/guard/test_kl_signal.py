"""The KL signal: equal to a hand computation over the vocabulary, its top-k bound, PEFT's base without a copy,
logged through Trainer, and a `kl:` budget that stops a run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from forgetless.guard.budget import Budget, Limit
from forgetless.guard.kl_signal import KLMeasure, KLSignal
from forgetless.guard.watch import Watch, WatchSettings
from forgetless.train.finetune import FinetuneSettings, finetune
from tests.conftest import sentences

TEXTS = sentences(6, seed=3)


def load(folder: Path):  # noqa: ANN201
    tok = AutoTokenizer.from_pretrained(folder)
    tok.pad_token = tok.eos_token
    return tok, AutoModelForCausalLM.from_pretrained(folder).eval()


@torch.no_grad()
def hand_kl(base, tuned, tok, texts: list[str], max_length: int, top_k: int | None = None) -> list[float]:  # noqa: ANN001
    """Per text, one at a time (no padding): the mean over positions of sum_v p(v) log(p(v) / q(v))."""
    out = []
    for text in texts:
        ids = torch.tensor([tok(text)["input_ids"][:max_length]])
        lp = F.log_softmax(base(ids).logits[0].float(), -1)
        lq = F.log_softmax(tuned(ids).logits[0].float(), -1)
        if top_k is None:
            kl = F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1)
        else:  # the base's top-k tokens, and every other token as one outcome
            idx = lp.topk(top_k, -1).indices
            p, q = lp.exp().gather(-1, idx), lq.exp().gather(-1, idx)
            p_rest, q_rest = 1 - p.sum(-1), 1 - q.sum(-1)
            kl = (p * (p.log() - q.log())).sum(-1) + p_rest * (p_rest.log() - q_rest.log())
        out.append(float(kl.mean()))
    return out


def ready(signal: KLSignal, tok, base) -> KLSignal:  # noqa: ANN001
    signal.batches = signal._tokenize(tok)  # what on_train_begin does with the trainer's tokenizer
    signal.base = signal._base(base, 0)
    return signal


def test_kl_equals_the_sum_over_the_vocabulary(tiny_model, tiny_tuned) -> None:  # noqa: ANN001
    tok, base = load(tiny_model)
    _, tuned = load(tiny_tuned)
    signal = ready(KLSignal(TEXTS, max_length=24, batch_size=4, top_k=None), tok, base)
    measured = signal.measure(tuned, step=3)
    expected = hand_kl(base, tuned, tok, TEXTS, 24)
    assert measured.per_sequence == pytest.approx(expected, rel=1e-4)  # padded batches vs one text at a time
    assert measured.mean == pytest.approx(sum(expected) / len(expected), rel=1e-4) and measured.mean > 0.01
    assert abs(signal.measure(base, step=4).mean) < 1e-6  # the base against itself
    assert signal.k is None and signal.cache_bytes() == sum(len(tok(t)["input_ids"][:24]) for t in TEXTS) * len(tok) * 4
    low, high = measured.interval()
    assert low < measured.mean < high


def test_top_k_is_the_coarsened_kl_and_a_lower_bound(tiny_model, tiny_tuned) -> None:  # noqa: ANN001
    tok, base = load(tiny_model)
    _, tuned = load(tiny_tuned)
    full = ready(KLSignal(TEXTS, max_length=24, top_k=None), tok, base).measure(tuned, 1)
    top = ready(KLSignal(TEXTS, max_length=24, top_k=5), tok, base)
    measured = top.measure(tuned, 1)
    assert measured.per_sequence == pytest.approx(hand_kl(base, tuned, tok, TEXTS, 24, top_k=5), rel=1e-4)
    assert all(t <= f + 1e-7 for t, f in zip(measured.per_sequence, full.per_sequence, strict=True))
    assert top.cache_bytes() < full_bytes(tok, 24) / 10
    auto = ready(KLSignal(TEXTS, max_length=24, cache_mb=1e-3), tok, base)  # the full cache would not fit
    assert auto.k == len(tok) if len(tok) <= 256 else auto.k == 256


def full_bytes(tok, max_length: int) -> int:  # noqa: ANN001
    return sum(len(tok(t)["input_ids"][:max_length]) for t in TEXTS) * len(tok) * 4


def test_peft_base_is_the_model_with_adapters_off(tiny_model) -> None:  # noqa: ANN001
    from peft import LoraConfig, get_peft_model

    tok, base = load(tiny_model)
    _, wrapped = load(tiny_model)
    # Random adapters (not the identity): the model with them on is not its base.
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(wrapped, lora).eval()
    signal = KLSignal(TEXTS, max_length=24, top_k=None)
    signal.batches = signal._tokenize(tok)
    signal.base = signal._base(peft_model, step=7)  # a resumed run: adapters switched off, nothing saved or copied
    measured = signal.measure(peft_model, 7)
    assert measured.per_sequence == pytest.approx(hand_kl(base, peft_model, tok, TEXTS, 24), rel=1e-4)
    assert measured.mean > 1e-4


def test_a_resumed_full_fine_tune_needs_the_saved_base(tiny_model, tmp_path) -> None:  # noqa: ANN001
    tok, base = load(tiny_model)
    signal = KLSignal(TEXTS, max_length=24, state_dir=tmp_path)
    signal.batches = signal._tokenize(tok)
    with pytest.raises(Exception, match="base cache was not saved"):
        signal._base(base, step=5)
    first = ready(KLSignal(TEXTS, max_length=24, state_dir=tmp_path), tok, base)
    again = KLSignal(TEXTS, max_length=24, state_dir=tmp_path)
    again.batches = again._tokenize(tok)
    again.base = again._base(base, step=5)  # read back, not computed from the (trained) weights
    assert torch.equal(again.base[0][0], first.base[0][0])


def test_kl_budget_is_judged_on_its_t_interval() -> None:
    assert (
        Budget.parse("kl:0.05").limits == [Limit("kl", 0.05, "kl")]
        and str(Budget.parse("2pt,kl:0.05")) == "2pt,kl:0.05"
    )
    assert Budget.parse("kl:0.05").problems({"mc": "acc"}) == []  # not a probe: no 'no watched probe' error
    over = Budget.parse("kl:0.05").check([KLMeasure(5, [0.20, 0.22, 0.25, 0.21], 0.1).comparison()])
    assert [(c.probe, c.unit, c.status) for c in over] == [("kl", "kl", "over")]
    assert over[0].change == pytest.approx(0.22) and over[0].low > 0.05
    within = Budget.parse("kl:0.05").check([KLMeasure(5, [0.011, 0.012, 0.013, 0.012], 0.1).comparison()])
    assert within[0].status == "within" and "kl rise +0.012 nats" in within[0].describe()
    unsure = Budget.parse("kl:0.05").check([KLMeasure(5, [0.0, 0.1, 0.02, 0.09], 0.1).comparison()])
    assert unsure[0].status == "inconclusive"  # mean 0.05 with a wide spread over sequences


class Recorder(TrainerCallback):
    def __init__(self) -> None:
        self.logs: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN003, ANN201
        self.logs.append({**(logs or {}), "step": state.global_step})


def test_logged_through_trainer_and_a_kl_budget_stops_the_run(tiny_model, tmp_path) -> None:  # noqa: ANN001
    tok, model = load(tiny_model)
    model.train()
    signal = KLSignal(TEXTS, max_length=24, tokenizer=tok)
    settings = WatchSettings([], {"probes": []}, tmp_path / "watch", Budget.parse("kl:0.002"), "stop", every=2)
    watch, recorder = Watch(WatchSettings(**{**settings.__dict__, "kl": signal}), tok), Recorder()
    training = FinetuneSettings(steps=8, batch_size=4, max_length=32, learning_rate=3e-3, args={"logging_steps": 1})
    finetune(model, tok, sentences(32), tmp_path / "train", training, callbacks=[watch, signal, recorder])
    logged = [e for e in recorder.logs if "loss" in e]
    assert all("kl/base" in e for e in logged) and logged[0]["kl/base"] > 0
    assert logged[-1]["kl/base"] > 2 * logged[0]["kl/base"]  # training moves the model away from its base
    stopped = watch.history["stopped"]
    assert stopped["action"] == "stop" and stopped["step"] % 2 == 0 and stopped["step"] < 8
    (check,) = watch.history["points"][-1]["checks"]
    assert check["probe"] == "kl" and check["status"] == "over" and check["low"] > 0.002
    assert watch.history["points"][-1]["kl"] == pytest.approx(check["change"])
    report = watch.report()["kl"]
    assert report["history"][0][0] == 1 and report["seconds"] > 0 and report["top_k"] is None


def test_forget_guard_takes_a_kl_signal_for_a_kl_limit(tiny_suite) -> None:  # noqa: ANN001
    from forgetless.errors import ConfigError
    from forgetless.guard.forget_guard import ForgetGuard

    with pytest.raises(ConfigError, match=r"budget 'kl:0.05' bounds the KL signal: pass kl=KLSignal"):
        ForgetGuard(suite=str(tiny_suite), budget="kl:0.05", policy="rollback")
    guard = ForgetGuard(suite=str(tiny_suite), budget="kl:0.05", policy="rollback", kl=KLSignal(TEXTS))
    assert guard.kl is not None and guard.policy == "rollback"
