"""The watch on scripted checks (no training): its points and its log carry within / inconclusive / over, a
rollback restores only a check shown within (else the base weights, saying so), and the run summary says
which weights were restored. Split from tests/test_no_inconclusive_as_within.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch

from forgetless.guard.budget import Budget
from forgetless.guard.sequential import SequentialCheck
from forgetless.guard.watch import STATUS_VALUES, Watch, WatchSettings
from tests.guard.status_setup import check

# -- the watch, on scripted checks (no training) -------------------------------------------------------------

END, EVERY = 80, 20


class Scripted(Watch):
    """A Watch whose checks return scripted statuses instead of scoring probes; its weights are a tiny Linear."""

    def __init__(self, folder: Path, policy: str, statuses: dict[int, tuple[str, float]], **settings) -> None:  # noqa: ANN003
        watch = WatchSettings([], {"probes": []}, folder, Budget.parse("mc:2pt"), policy, every=EVERY, **settings)
        super().__init__(watch, tokenizer=None)
        self.statuses = statuses
        self.logs: list[dict] = []
        control = SimpleNamespace(should_log=False)
        self.attach(SimpleNamespace(control=control, log=self.logs.append))

    def _measure(self, model, step, alpha, last):  # noqa: ANN001, ANN202
        status, change = self.statuses[step]
        return SequentialCheck({"probes": []}, [], [check(status, change)], 1.0, 1)


def train(watch: Watch, model: torch.nn.Module) -> int:
    """Step through training as Trainer would; the step at which the watch stopped it (END: never)."""
    state = SimpleNamespace(global_step=0, max_steps=END)
    control = SimpleNamespace(should_training_stop=False, should_save=False, should_log=False)
    with torch.no_grad():
        model.weight.fill_(0)  # the weights of step N hold N: which step was restored is plain
    watch.on_train_begin(None, state, control, model=model)
    for step in range(1, END + 1):
        state.global_step = step
        with torch.no_grad():
            model.weight.fill_(step)
        watch.on_step_end(None, state, control, model=model)
        if control.should_training_stop:
            return step
    return END


def test_watch_points_and_log_carry_the_three_statuses(tmp_path) -> None:  # noqa: ANN001
    script = {20: ("inconclusive", 1.5), 40: ("within", 0.0), 60: ("over", 5.0), 80: ("inconclusive", 3.0)}
    watch = Scripted(tmp_path, "warn", script)
    assert train(watch, torch.nn.Linear(2, 2)) == END
    points = watch.history["points"]
    assert [(p["step"], p["status"]) for p in points] == [
        (0, "within"),
        (20, "inconclusive"),
        (40, "within"),
        (60, "over"),
        (80, "inconclusive"),
    ]
    assert all("within" not in p for p in points)
    assert [log["watch/budget_status"] for log in watch.logs] == [0.0, 1.0, -1.0, 0.0]
    assert not any("watch/within_budget" in log for log in watch.logs)
    assert STATUS_VALUES == {"within": 1.0, "inconclusive": 0.0, "noise": 0.0, "over": -1.0}
    saved = json.loads((tmp_path / "watch.json").read_text())
    assert [p["status"] for p in saved["points"]] == [p["status"] for p in points]


def test_rollback_restores_only_a_check_shown_within(tmp_path) -> None:  # noqa: ANN001
    # Inconclusive checks whose estimates are inside the limit, then a breach: none was shown within.
    script = {20: ("inconclusive", 0.5), 40: ("inconclusive", 1.0), 60: ("over", 5.0)}
    watch = Scripted(tmp_path / "within", "rollback", script)
    model = torch.nn.Linear(2, 2)
    assert train(watch, model) == 60
    stopped = watch.history["stopped"]
    assert stopped["action"] == "rollback" and stopped["restored_step"] == 0
    assert stopped["restored_why"] == "no check was shown within budget; the base weights (step 0) were restored"
    assert torch.all(model.weight == 0)  # the weights of step 0

    # The older rule, asked for: the best check not shown over whose estimates are within (the latest here).
    watch = Scripted(tmp_path / "not-over", "rollback", script, rollback_to="not_over")
    model = torch.nn.Linear(2, 2)
    assert train(watch, model) == 60
    stopped = watch.history["stopped"]
    assert stopped["restored_step"] == 40 and torch.all(model.weight == 40)
    assert "rollback_to not_over; its status: inconclusive" in stopped["restored_why"]

    # A check shown within is restored under the default rule, and the decision says why.
    script = {20: ("within", 0.0), 40: ("inconclusive", 1.0), 60: ("over", 5.0)}
    watch = Scripted(tmp_path / "shown", "rollback", script)
    model = torch.nn.Linear(2, 2)
    assert train(watch, model) == 60
    stopped = watch.history["stopped"]
    assert stopped["restored_step"] == 20 and torch.all(model.weight == 20)
    assert stopped["restored_why"] == "restored step 20: the best check shown within budget (the latest)"


def test_run_summary_says_which_weights_were_restored() -> None:
    from forgetless.pipeline.run import guard_markdown

    base = {
        "budget": "mc:2pt",
        "policy": "rollback",
        "false_alarm": 0.05,
        "final": [check("inconclusive", 1.0).to_dict()],
        "status": "inconclusive",
        "stopped": {
            "stage": "new",
            "action": "rollback",
            "step": 60,
            "why": "mc: acc drop +5.0 points (limit 2 points, over)",
            "restored_step": 0,
            "restored_why": "no check was shown within budget; the base weights (step 0) were restored",
        },
    }
    text = "\n".join(guard_markdown(base))
    assert (
        "- No check was shown within budget; the base weights were restored: the returned model is the base model "
        "(no target gain)." in text
    )
    state = "inconclusive: not shown within budget (mc inconclusive; about 120 items would decide)"
    assert f"- Final model: {state}." in text
    assert "Final model: within budget" not in text
    over = {**base, "final": [check("over", 5.0).to_dict()], "status": "over"}
    assert "- Final model: OVER budget." in "\n".join(guard_markdown(over))
    within = {**base, "final": [check("within", 0.0).to_dict()], "status": "within"}
    assert "- Final model: within budget." in "\n".join(guard_markdown(within))
    # A results.json written before `status` (within_budget: true with an inconclusive check) is read from its checks.
    old = {k: v for k, v in base.items() if k != "status"} | {"within_budget": True}
    assert "Final model: inconclusive: not shown within budget" in "\n".join(guard_markdown(old))
