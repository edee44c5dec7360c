"""The guard in a real run: checks every step, stops at the first breach, rolls back, resumes, validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from forgetless.cli.main import app
from forgetless.guard.procedure import last_over_share, over_share
from tests.guard.guard_setup import write_guarded

runner = CliRunner()


def run(config: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["run", str(config), *extra], catch_exceptions=False)
    results = json.loads((config.parent / "run" / "results.json").read_text())
    # The exit code is the final model's status (cli/exit_codes.py): 3 over, 0 within or inconclusive.
    assert result.exit_code == (3 if results["guard"]["status"] == "over" else 0), result.output
    return results


def statuses(results: dict) -> list[dict[str, str]]:
    points = results["stages"][0]["training"]["watch"]["points"]
    return [{c["probe"]: c["status"] for c in p["checks"]} for p in points]


@pytest.fixture(scope="module")
def warned(old_base, mc_data, tmp_path_factory) -> dict:  # noqa: ANN001
    """The same run with policy warn: every step checked, nothing stopped; the reference dynamics."""
    folder = tmp_path_factory.mktemp("warned")
    return run(write_guarded(folder, old_base, mc_data, {"budget": "5%,2pt", "policy": "warn", "every": 1}))


def test_warn_records_every_check_and_breach(warned) -> None:  # noqa: ANN001
    watch = warned["stages"][0]["training"]["watch"]
    assert [p["step"] for p in watch["points"]] == list(range(13))  # step 0 (baseline) .. 12
    assert [e["step"] for e in watch["events"]] == [s for s, st in enumerate(statuses(warned)) if "over" in st.values()]
    assert warned["guard"]["stopped"] is None and warned["guard"]["status"] == "over"
    assert "within_budget" not in warned["guard"] and all(p["status"] for p in watch["points"])
    assert watch["overhead"] is not None and watch["watch_seconds"] > 0
    # The run's 5% false-alarm rate, spent over the checks as guard.procedure says: the shares sum to at most
    # the rate, the last check keeps its share; each check splits its share over its limits, within is not split.
    shares, steps = [p["alpha"] for p in watch["points"]], [p["step"] for p in watch["points"]]
    expected = [over_share(0.05, step, previous, 12) for previous, step in zip(steps, steps[1:], strict=False)]
    assert shares[1:] == pytest.approx(expected) and shares[-1] == pytest.approx(last_over_share(0.05))
    assert sum(shares) <= 0.05 + 1e-12
    last = watch["points"][-1]["checks"]
    assert all(c["over_level"] == pytest.approx(shares[-1] / len(last)) for c in last)
    assert all(c["within_level"] == pytest.approx(0.05) for c in last)
    assert [s for s, _ in warned["stages"][0]["training"]["loss_curve"]] == list(range(1, 13))  # logging intact


def test_stop_at_the_first_step_over_budget(warned, old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    first = next(s for s, st in enumerate(statuses(warned)) if "over" in st.values())
    assert 0 < first < 12  # the setup breaks its budget mid-run
    results = run(write_guarded(tmp_path, old_base, mc_data, {"budget": "5%,2pt", "policy": "stop", "every": 1}))
    stopped = results["guard"]["stopped"]
    assert stopped["action"] == "stop" and stopped["step"] == first and "old_ppl" in stopped["why"]
    assert results["stages"][0]["training"]["loss_curve"][-1][0] == first  # trained no further
    assert "stopped the run in stage `new` at step" in (tmp_path / "run" / "summary.md").read_text()


def test_an_inconclusive_check_does_not_trigger(warned, old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    """mc's accuracy ends more than 2 points down, but its interval straddles the limit: never a breach."""
    points = warned["stages"][0]["training"]["watch"]["points"]
    past_limit = [c for p in points for c in p["checks"] if c["probe"] == "mc" and c["change"] > c["limit"]]
    assert past_limit and {c["status"] for c in past_limit} == {"inconclusive"}
    assert all(c["low"] < c["limit"] < c["high"] for c in past_limit)
    results = run(write_guarded(tmp_path, old_base, mc_data, {"budget": "mc:2pt", "policy": "stop", "every": 1}))
    assert results["guard"]["stopped"] is None
    assert results["stages"][0]["training"]["loss_curve"][-1][0] == 12


def test_rollback_restores_the_best_weights_within_budget(warned, old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    results = run(write_guarded(tmp_path, old_base, mc_data, {"budget": "5%", "policy": "rollback", "every": 1}))
    stopped = results["guard"]["stopped"]
    # Rollback points (rollback_to: within, the default): the checks shown within budget, the base among them.
    points = results["stages"][0]["training"]["watch"]["points"]
    within = [p for p in points if p["status"] == "within" and p["step"] < stopped["step"]]
    best = min(reversed(within), key=lambda p: p["target_change"])  # ties: the latest
    assert stopped["action"] == "rollback" and stopped["restored_step"] == best["step"] > 0
    assert (
        stopped["restored_why"]
        == f"restored step {best['step']}: the best check shown within budget (most target gain)"
    )
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert f"- Restored step {best['step']}: the best check shown within budget (most target gain)." in summary
    run_dir = tmp_path / "run"
    saved = load_file(run_dir / "stage-1-new" / "watch" / "best.safetensors")
    final = load_file(run_dir / "stage-1-new" / "model" / "model.safetensors")
    for name, value in final.items():
        torch.testing.assert_close(value, saved[name], rtol=0, atol=0)
    # ...and those are the weights of a run trained for exactly that many steps.
    plain = tmp_path / "plain"
    run(write_guarded(plain, old_base, mc_data, {"watch": False}, training=steps(best["step"])))
    reference = load_file(plain / "run" / "stage-1-new" / "model" / "model.safetensors")
    for name, value in final.items():
        torch.testing.assert_close(value, reference[name], rtol=1e-5, atol=1e-6)
    # The final model (the restored weights) is not over budget, and a resumed run does not train past the stop.
    assert results["guard"]["status"] in ("within", "inconclusive")
    state = {"within": "within budget", "inconclusive": "inconclusive: not shown within budget ("}
    assert f"- Final model: {state[results['guard']['status']]}" in summary
    again = run(tmp_path / "config.yaml", "--resume")
    assert again["guard"]["stopped"]["step"] == stopped["step"]
    resumed = load_file(run_dir / "stage-1-new" / "model" / "model.safetensors")
    for name, value in final.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=0)


def steps(n: int) -> dict:
    return {"steps": n, "learning_rate": 1e-2, "batch_size": 8, "max_length": 48, "save_steps": 100}


def test_lora_rollback(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    config = write_guarded(
        tmp_path,
        old_base,
        mc_data,
        {"budget": "5%", "policy": "rollback", "every": 1},
        methods=[{"name": "lora", "r": 8, "target_modules": ["q_proj", "v_proj", "up_proj", "down_proj"]}],
        training={**steps(12), "learning_rate": 5e-2},
    )
    results = run(config)
    stopped = results["guard"]["stopped"]
    assert stopped and stopped["action"] == "rollback"
    assert results["guard"]["status"] in ("within", "inconclusive")
    assert (tmp_path / "run" / "stage-1-new" / "model" / "adapter_config.json").is_file()


def test_budget_problems_are_reported_before_loading(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    config = write_guarded(
        tmp_path,
        old_base,
        mc_data,
        {"budget": ["old_ppl:2pt", "mc:5%", "nope:1pt", "stage_new:5%", "3 apples"], "policy": "stop"},
    )
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 2
    assert "3 apples" in result.output  # the one that does not parse is reported alone
    config = write_guarded(
        tmp_path, old_base, mc_data, {"budget": ["old_ppl:2pt", "mc:5%", "nope:1pt", "stage_new:5%"]}
    )
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 2
    for expected in (
        "old_ppl' is measured by perplexity",
        "use % (perplexity",
        "'mc' is measured by acc",
        "no watched probe is named 'nope'",
        "'stage_new' is the target",
    ):
        assert expected in " ".join(result.output.split()), result.output


def test_command_line_budget_overrides_the_config(old_base, mc_data, tmp_path) -> None:  # noqa: ANN001
    config = write_guarded(tmp_path, old_base, mc_data, {"budget": "90%", "policy": "warn", "every": 4})
    results = run(config, "--budget", "5%", "--policy", "stop", "--every", "1")
    assert results["guard"]["budget"] == "5%" and results["guard"]["policy"] == "stop"
    assert results["guard"]["stopped"]["step"] < 12
