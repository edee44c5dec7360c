"""The watch callback on its own: checks reach Trainer's logs (so `report_to`), cadence, cost accounting."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from forgetless.evaluation.evaluate import evaluate
from forgetless.guard.budget import Budget
from forgetless.guard.watch import Watch, WatchSettings
from forgetless.models import load_model
from forgetless.suites import load_suite
from forgetless.train.finetune import FinetuneSettings, finetune
from tests.conftest import sentences


class Recorder(TrainerCallback):
    """Stands in for a report_to integration: those are on_log callbacks too."""

    def __init__(self) -> None:
        self.logs: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN003, ANN201
        self.logs.append({**(logs or {}), "step": state.global_step})


def watched_finetune(tiny_model: Path, tiny_suite: Path, tmp_path: Path, every: int | None) -> tuple[Watch, Recorder]:
    suite = load_suite(str(tiny_suite))
    suite.probes = [p for p in suite.probes if p.config.kind != "canary"]
    baseline = evaluate(load_model(str(tiny_model), device="cpu"), suite)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    settings = WatchSettings(suite.probes, baseline, tmp_path / "watch", Budget.parse("5%,2pt"), every=every)
    watch, recorder = Watch(settings, tok), Recorder()
    training = FinetuneSettings(steps=6, batch_size=4, max_length=32, learning_rate=1e-3)
    finetune(model, tok, sentences(24), tmp_path / "train", training, callbacks=[watch, recorder])
    return watch, recorder


def test_checks_are_logged_through_trainer(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    watch, recorder = watched_finetune(tiny_model, tiny_suite, tmp_path, every=2)
    logged = [entry for entry in recorder.logs if "watch/docs_ppl/perplexity" in entry]
    assert [e["step"] for e in logged] == [2, 4, 6]
    assert {"watch/mc/acc", "watch/budget_status", "watch/seconds"} <= set(logged[0])
    statuses = {p["step"]: p["status"] for p in watch.report()["points"]}
    assert [e["watch/budget_status"] for e in logged] == [
        {"within": 1.0, "inconclusive": 0.0, "over": -1.0}[statuses[e["step"]]] for e in logged
    ]
    assert [e["step"] for e in recorder.logs if "loss" in e] == list(range(1, 7))  # Trainer's own lines stay
    report = watch.report()
    assert [p["step"] for p in report["points"]] == [0, 2, 4, 6]
    assert report["watch_seconds"] > 0
    assert report["overhead_with_last"] == report["watch_seconds"] / report["train_seconds"]
    last = report["points"][-1]
    assert last["last"] and not any(p.get("last") for p in report["points"][:-1])
    assert report["overhead"] == pytest.approx((report["watch_seconds"] - last["seconds"]) / report["train_seconds"])
    assert (tmp_path / "watch" / "watch.json").is_file()


def test_auto_cadence_checks_the_last_step_and_spaces_the_rest(tiny_model, tiny_suite, tmp_path) -> None:  # noqa: ANN001
    watch, _ = watched_finetune(tiny_model, tiny_suite, tmp_path, every=None)
    steps = [p["step"] for p in watch.report()["points"]]
    assert steps[0] == 0 and steps[-1] == 6
    assert 1 not in steps  # the first step is only timed (it includes warm-up)
