"""ForgetGuard in a user's own script: the same checks and decisions as `forgetless run`'s guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.errors import ForgetlessError
from forgetless.guard.forget_guard import ForgetGuard
from tests.guard.guard_setup import write_guarded
from tests.integration.script_setup import LogRecorder, held_out_file, plain_trainer, sft_trainer

runner = CliRunner()


def forgetless_run(folder: Path, old_base: Path, mc_data: Path, guard: dict, **changes) -> dict:  # noqa: ANN003
    config = write_guarded(folder, old_base, mc_data, guard, **changes)
    result = runner.invoke(app, ["run", str(config)], catch_exceptions=False)
    results = json.loads((folder / "run" / "results.json").read_text())
    assert result.exit_code == (3 if results["guard"]["status"] == "over" else 0), result.output  # cli/exit_codes.py
    return results


def values(points: list[dict]) -> list[tuple[int, dict]]:
    """Each check's step and general probes' values (the target probe is named differently in the run)."""
    points = json.loads(json.dumps(points))  # as written to watch.json: (metric, value) pairs become lists
    return [
        (p["step"], {k: v for k, v in p["values"].items() if not k.startswith(("stage_", "target"))}) for p in points
    ]


@pytest.mark.parametrize("policy", ["stop", "rollback"])
def test_plain_trainer_decides_as_forgetless_run(policy, old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    budget = "5%,2pt" if policy == "stop" else "5%"
    results = forgetless_run(tmp_path / "cli", old_base, mc_data, {"budget": budget, "policy": policy, "every": 1})
    run_watch = results["stages"][0]["training"]["watch"]
    assert results["guard"]["stopped"] and 0 < results["guard"]["stopped"]["step"] < 12  # the setup breaks mid-run

    suite = tmp_path / "cli" / "suite.yaml"
    guard = ForgetGuard(suite=str(suite), budget=budget, policy=policy, every=1, target=held_out_file(tmp_path))
    recorder = LogRecorder()
    trainer = plain_trainer(old_base, tmp_path / "script", [recorder])
    trainer.add_callback(guard)  # the one line
    trainer.train()

    stopped, expected = guard.history["stopped"], results["guard"]["stopped"]
    assert stopped["action"] == expected["action"] == policy
    assert stopped["step"] == expected["step"] == trainer.state.global_step  # trained no further
    assert stopped.get("restored_step") == expected.get("restored_step")
    assert values(guard.history["points"]) == values(run_watch["points"])  # same checks, same numbers
    assert [c["status"] for p in guard.history["points"] for c in p["checks"]] == [
        c["status"] for p in run_watch["points"] for c in p["checks"]
    ]
    # Logged through Trainer.log, so report_to integrations see every check.
    logged = [log for log in recorder.logs if "watch/budget_status" in log]
    assert len(logged) == stopped["step"] and "watch/old_ppl/perplexity" in logged[0]
    assert (tmp_path / "script" / "forgetless-guard" / "watch.json").is_file()
    # The stop is checkpointed (save_strategy "steps" here, as in the run), so a resume does not train on.
    assert [c.name for c in (tmp_path / "script").glob("checkpoint-*")] == [f"checkpoint-{stopped['step']}"]
    if policy == "rollback":
        final = load_file(tmp_path / "cli" / "run" / "stage-1-new" / "model" / "model.safetensors")
        for name, value in trainer.model.state_dict().items():
            torch.testing.assert_close(value, final[name], rtol=0, atol=0)


def test_sft_trainer_rolls_back_to_the_best_weights_within_budget(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    write_guarded(tmp_path, old_base, mc_data, {})
    guard = ForgetGuard(str(tmp_path / "suite.yaml"), "5%", "rollback", every=1, target=held_out_file(tmp_path))
    recorder = LogRecorder()
    trainer = sft_trainer(old_base, tmp_path / "sft", [recorder])
    trainer.add_callback(guard)
    trainer.train()
    history = guard.history
    stopped = history["stopped"]
    assert stopped["action"] == "rollback" and 0 < stopped["step"] == trainer.state.global_step < 12
    # rollback_to "within" (the default): the checks shown within budget, step 0 (the base) among them.
    within = [p for p in history["points"] if p["status"] == "within" and p["step"] < stopped["step"]]
    best = min(reversed(within), key=lambda p: p["target_change"])  # ties: the latest
    assert stopped["restored_step"] == best["step"] and stopped["restored_why"]
    saved = load_file(tmp_path / "sft" / "forgetless-guard" / "best.safetensors")
    for name, value in trainer.model.state_dict().items():
        torch.testing.assert_close(value, saved[name], rtol=0, atol=0)
    assert {log["watch/budget_status"] for log in recorder.logs if "watch/budget_status" in log} <= {1.0, 0.0, -1.0}
    assert not list((tmp_path / "sft").glob("checkpoint-*"))  # save_strategy "no": no checkpoint behind its back
    assert guard.report()["policy"] == "rollback" and guard.report()["budget"] == "5%"


def test_lora_model_rolls_back_its_adapter(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    write_guarded(tmp_path, old_base, mc_data, {})
    lora = LoraConfig(r=8, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(old_base), lora)
    guard = ForgetGuard(str(tmp_path / "suite.yaml"), "5%", "rollback", every=1, target=held_out_file(tmp_path))
    trainer = plain_trainer(old_base, tmp_path / "lora", [guard], model=model, learning_rate=5e-2)
    trainer.train()
    stopped = guard.history["stopped"]
    assert stopped and stopped["action"] == "rollback" and stopped["step"] < 12
    saved = load_file(tmp_path / "lora" / "forgetless-guard" / "best.safetensors")
    adapters = {n: p for n, p in model.state_dict().items() if "lora_" in n}
    assert adapters and all(torch.equal(p, saved[n]) for n, p in adapters.items())


def test_resume_restores_the_history_and_a_new_run_starts_fresh(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    write_guarded(tmp_path, old_base, mc_data, {})
    suite, out = str(tmp_path / "suite.yaml"), tmp_path / "resumable"

    def guarded(steps: int, save_steps: int | None) -> tuple[ForgetGuard, object]:
        guard = ForgetGuard(suite, "5%", "warn", every=1)
        return guard, plain_trainer(old_base, out, [guard], steps=steps, save_steps=save_steps)

    guard, trainer = guarded(6, 3)
    trainer.train()
    first = json.loads(json.dumps(guard.history))
    assert [p["step"] for p in first["points"]] == list(range(7)) and first["events"]

    guard, trainer = guarded(6, 3)  # a new process: a new guard, reading its state from output_dir
    trainer.train(resume_from_checkpoint=str(out / "checkpoint-3"))
    again = guard.history
    assert [p["step"] for p in again["points"]] == list(range(7))
    assert again["points"][:4] == first["points"][:4]  # kept from before the checkpoint (timings included)
    assert values(again["points"]) == values(first["points"])  # the baseline of the start, not of checkpoint-3
    assert [e["step"] for e in again["events"]] == [e["step"] for e in first["events"]]

    guard, trainer = guarded(2, None)  # a fresh run in the same folder: none of the old history
    trainer.train()
    assert [p["step"] for p in guard.history["points"]] == [0, 1, 2]


def test_bad_input_fails_at_construction(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    write_guarded(tmp_path, old_base, mc_data, {})
    suite = str(tmp_path / "suite.yaml")
    with pytest.raises(ForgetlessError) as error:
        ForgetGuard(suite, budget="nope:5%,old_ppl:2pt,mc:5%", policy="rolback", every=0, target="missing.jsonl")
    text = " ".join(str(error.value).split())
    for expected in (
        "no watched probe is named 'nope'",
        "'old_ppl' is measured by perplexity, which a limit in points cannot bound; use % (perplexity",
        "'mc' is measured by acc",
        "unknown policy 'rolback' fix: did you mean 'rollback'?",
        "every: must be a whole number of steps >= 1 or 'auto' (got 0)",
        "target: 'missing.jsonl' is neither a file of held-out texts nor a probe of suite",
    ):
        assert expected in text, text
    with pytest.raises(ForgetlessError, match="is not \\[probe:\\]AMOUNT UNIT"):
        ForgetGuard(suite, budget="3 apples")
    with pytest.raises(ForgetlessError, match="policy 'stop' needs a budget"):
        ForgetGuard(suite, policy="stop")
    with pytest.raises(ForgetlessError, match="'mc' is not a perplexity probe"):
        ForgetGuard(suite, budget="5%", target="mc")
    ForgetGuard(suite, budget="5%", target="old_ppl")  # a perplexity probe of the suite may be the target


def test_a_trainer_without_tokenizer_fails_before_any_step(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    write_guarded(tmp_path, old_base, mc_data, {})
    guard = ForgetGuard(str(tmp_path / "suite.yaml"), "5%", "stop", every=1)
    trainer = plain_trainer(old_base, tmp_path / "out", [guard])
    trainer.processing_class = trainer.callback_handler.processing_class = None
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    with pytest.raises(ForgetlessError, match="pass processing_class=tokenizer"):
        trainer.train()
    assert trainer.state.global_step == 0
    assert all(torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())
