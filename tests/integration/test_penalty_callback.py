"""ForgetPenalty in a user's own script: the same weights as forgetless's trainer, no extra forward pass."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from forgetless.errors import ForgetlessError
from forgetless.methods import METHODS, TrainContext
from forgetless.methods.replay import mixed_with
from forgetless.train.finetune import FinetuneSettings, finetune
from forgetless.train.penalty_callback import ForgetPenalty
from forgetless.train.replay_data import mix_replay
from tests.integration.script_setup import SETTINGS, TRAIN, LogRecorder, plain_trainer, sft_trainer
from tests.methods.forgetting_setup import OLD_HELD, OLD_TRAIN

KEEP = OLD_TRAIN[:16]
STEPS = 6


def reference(old_base: Path, folder: Path, name: str, settings: dict[str, Any], **training: Any) -> tuple[Any, dict]:
    """`forgetless run`'s path: finetune() with ForgetlessTrainer and the method."""
    tok = AutoTokenizer.from_pretrained(old_base)
    cls = METHODS.get(name)
    method = cls(cls.config_class(name=name, **settings))
    values = FinetuneSettings(**{**SETTINGS, "steps": STEPS, **training})
    context = TrainContext(tokenizer=tok, keep_texts=list(KEEP), seed=0)
    return finetune(AutoModelForCausalLM.from_pretrained(old_base), tok, TRAIN, folder, values, [method], context)


def scripted(old_base: Path, folder: Path, penalty: ForgetPenalty | None, **training: Any) -> tuple[Any, LogRecorder]:
    recorder = LogRecorder()  # added before the penalty: it still sees penalty/NAME (the penalty moves to the front)
    trainer = plain_trainer(old_base, folder, [recorder], steps=STEPS, **training)
    if penalty is not None:
        trainer.add_callback(penalty)
    trainer.train()
    return trainer, recorder


def max_difference(a: Any, b: Any) -> float:
    right = dict(b.named_parameters())
    return max(float((p - right[n]).abs().max()) for n, p in a.named_parameters())


class LateL2SP(TrainerCallback):
    """The naive callback: the penalty's gradient added after clipping (on_pre_optimizer_step)."""

    def __init__(self, alpha: float) -> None:
        self.method = METHODS.get("l2sp")(METHODS.get("l2sp").config_class(alpha=alpha))

    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:  # noqa: ANN001
        self.method.prepare_model(model, TrainContext(tokenizer=None))

    def on_pre_optimizer_step(self, args, state, control, **kwargs) -> None:  # noqa: ANN001
        self.method.add_penalty_grad(1.0)


@pytest.mark.parametrize(
    ("name", "settings", "training"),
    [
        ("l2sp", {"alpha": 1.0}, {}),
        ("ewc", {"lam": 1.0, "fisher_samples": 16}, {"batch_size": 4, "gradient_accumulation": 2}),
        ("distill", {"weight": 1.0}, {"batch_size": 4, "gradient_accumulation": 2}),
    ],
)
def test_same_weights_and_penalty_curve_as_forgetless_trainer(name, settings, training, old_base, tmp_path) -> None:  # noqa: ANN001
    tuned, record = reference(old_base, tmp_path / "run", name, settings, **training)
    penalty = ForgetPenalty(name, keep=KEEP, max_length=SETTINGS["max_length"], **settings)
    trainer, recorder = scripted(old_base, tmp_path / "script", penalty, **training)
    # Measured (max |weight difference| after 6 steps): 0 for l2sp (GA 1: the same two addends), 6e-8 for
    # ewc (GA 2: the gradient added once instead of in halves, another float summation order), 0 for
    # distill (the same term on the same loss); the penalty itself moves the weights by 0.06-0.08.
    difference = max_difference(trainer.model, tuned)
    assert difference < 1e-6, difference
    plain, _ = scripted(old_base, tmp_path / "plain", None, **training)
    assert max_difference(plain.model, tuned) > 1e3 * max(difference, 1e-9)  # the penalty did change the weights
    # penalty/NAME beside each loss line: what report_to integrations receive, and the run's curve.
    logged = [(log["loss"], log[f"penalty/{name}"]) for log in recorder.logs if "loss" in log]
    assert len(logged) == STEPS
    history = [h[f"penalty/{name}"] for h in trainer.state.log_history if "loss" in h]
    curve = [p[f"penalty/{name}"] for _, p in record["penalty_curve"]]
    assert [p for _, p in logged] == history and len(curve) == STEPS
    torch.testing.assert_close(torch.tensor(history), torch.tensor(curve), rtol=1e-4, atol=1e-6)


def test_a_penalty_after_clipping_is_not_the_same_method(old_base, tmp_path) -> None:  # noqa: ANN001
    tuned, _ = reference(old_base, tmp_path / "run", "l2sp", {"alpha": 1.0})
    late = plain_trainer(old_base, tmp_path / "late", [LateL2SP(1.0)], steps=STEPS)
    late.train()
    assert max_difference(late.model, tuned) > 1e-3  # why ForgetPenalty adds it at on_step_begin


def count_training_forwards(model: Any) -> list[int]:
    calls = [0]

    def count(module: Any, args: Any, output: Any) -> None:
        calls[0] += module.training and torch.is_grad_enabled()

    model.register_forward_hook(count)
    return calls


def test_no_extra_forward_pass_in_sft_trainer(old_base, tmp_path) -> None:  # noqa: ANN001
    plain_model = AutoModelForCausalLM.from_pretrained(old_base)
    plain = count_training_forwards(plain_model)
    sft_trainer(old_base, tmp_path / "plain", [], model=plain_model, max_steps=3).train()

    model = AutoModelForCausalLM.from_pretrained(old_base)
    guarded = count_training_forwards(model)
    recorder = LogRecorder()
    trainer = sft_trainer(old_base, tmp_path / "penalized", [recorder], model=model, max_steps=3)
    trainer.add_callback(ForgetPenalty("l2sp", alpha=0.1))
    trainer.add_callback(ForgetPenalty("ewc", lam=1.0, keep=KEEP, fisher_samples=4))
    trainer.train()
    assert guarded[0] == plain[0] == 3  # one forward per step, as plain SFTTrainer
    lines = [log for log in recorder.logs if "loss" in log]
    assert len(lines) == 3 and all("penalty/l2sp" in log and "penalty/ewc" in log for log in lines)
    assert lines[0]["penalty/l2sp"] == 0.0 and lines[-1]["penalty/l2sp"] > 0  # anchored at the start


def test_distill_counts_no_extra_student_forward(old_base, tmp_path) -> None:  # noqa: ANN001
    plain_model = AutoModelForCausalLM.from_pretrained(old_base)
    plain = count_training_forwards(plain_model)
    plain_trainer(old_base, tmp_path / "plain", [], model=plain_model, steps=3).train()
    model = AutoModelForCausalLM.from_pretrained(old_base)
    counted = count_training_forwards(model)
    plain_trainer(old_base, tmp_path / "distill", [ForgetPenalty("distill")], model=model, steps=3).train()
    assert counted[0] == plain[0] == 3


def test_penalty_resumes_anchored_at_the_start(old_base, tmp_path) -> None:  # noqa: ANN001
    whole = plain_trainer(old_base, tmp_path / "whole", [ForgetPenalty("l2sp", alpha=1.0)], steps=6, save_steps=3)
    whole.train()
    out = tmp_path / "resumed"
    plain_trainer(old_base, out, [ForgetPenalty("l2sp", alpha=1.0)], steps=6, save_steps=3).train()
    resumed = plain_trainer(old_base, out, [ForgetPenalty("l2sp", alpha=1.0)], steps=6, save_steps=3)
    resumed.train(resume_from_checkpoint=str(out / "checkpoint-3"))
    assert max_difference(resumed.model, whole.model) < 1e-6


def test_bad_input_is_refused_before_any_step(old_base, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ForgetlessError, match="(?s)unknown penalty 'l2sq'.*did you mean 'l2sp'"):
        ForgetPenalty("l2sq")
    with pytest.raises(ForgetlessError, match="mix_replay"):
        ForgetPenalty("replay")
    with pytest.raises(ForgetlessError, match="alpah: Extra inputs are not permitted .*did you mean 'alpha'"):
        ForgetPenalty("l2sp", alpah=0.1)
    with pytest.raises(ForgetlessError, match="alpha: Input should be greater than 0"):
        ForgetPenalty("l2sp", alpha=-1)
    with pytest.raises(ForgetlessError, match="ewc estimates its Fisher on kept data"):
        ForgetPenalty("ewc")
    with pytest.raises(ForgetlessError, match="keep is empty"):
        ForgetPenalty("ewc", keep=[])
    sharded = SimpleNamespace(is_deepspeed_enabled=False, is_fsdp_enabled=True)  # as Trainer sets them under FSDP
    trainer = plain_trainer(old_base, tmp_path / "fsdp", [ForgetPenalty("l2sp", trainer=sharded)], steps=2)
    with pytest.raises(ForgetlessError, match="DeepSpeed and FSDP shard"):
        trainer.train()
    assert trainer.state.global_step == 0
    trainer = sft_trainer(old_base, tmp_path / "sft", [ForgetPenalty("distill")], max_steps=2)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    with pytest.raises(ForgetlessError, match="fused LM head"):
        trainer.train()
    assert all(torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())


def test_mix_replay_is_forgetless_replay_as_a_dataset() -> None:
    import datasets

    train = datasets.Dataset.from_dict({"text": TRAIN[:30], "id": list(range(30))})
    mixed = mix_replay(train, OLD_HELD, ratio=0.25, seed=3)
    assert isinstance(mixed, datasets.Dataset) and mixed.column_names == ["text"]
    assert len(mixed) == 40 and sum(t in OLD_HELD for t in mixed["text"]) == 10  # a quarter replayed
    assert mixed["text"] == mixed_with(train, OLD_HELD, 0.25, 3)["text"]
    assert mix_replay(TRAIN[:30], datasets.Dataset.from_dict({"text": OLD_HELD}), 0.25, 3)["text"] == mixed["text"]
    with pytest.raises(ForgetlessError, match="keep is empty"):
        mix_replay(train, [], 0.2)
    with pytest.raises(ForgetlessError, match="ratio must be in"):
        mix_replay(train, OLD_HELD, 1.0)
    with pytest.raises(ForgetlessError, match="no `text` column"):
        mix_replay(datasets.Dataset.from_dict({"messages": ["x"]}), OLD_HELD)
