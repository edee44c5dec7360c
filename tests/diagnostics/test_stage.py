"""The diagnostics of a real (tiny) fine-tune: what freezing and full fine-tuning do to drift, all three together."""

from __future__ import annotations

from pathlib import Path

from tests.diagnostics.conftest import train_with_diagnostics
from tests.methods.forgetting_setup import make


def blocks(report: dict) -> dict[str, dict]:
    return {r["block"]: r for r in report["drift"]["blocks"]}


def test_freezing_the_first_block_leaves_its_drift_at_zero(old_base: Path, tmp_path: Path) -> None:
    freeze = make("freeze", part="first_n", n=1)
    _, report, _ = train_with_diagnostics(old_base, tmp_path, [freeze], importance=False, interference=False)
    drift = blocks(report)
    assert drift["0"]["drift"] == 0.0 and drift["0"]["frozen"] and drift["embed"]["drift"] == 0.0
    assert drift["1"]["drift"] > 0 and drift["head"]["drift"] > 0
    assert report["drift"]["start"].startswith("snapshot")


def test_full_fine_tuning_moves_every_block_and_reports_all_three(old_base: Path, tmp_path: Path) -> None:
    _, report, diag = train_with_diagnostics(old_base, tmp_path, [], every=2)
    assert set(report) == {"drift", "importance", "interference"}
    assert all(r["drift"] > 0 and not r["frozen"] for r in report["drift"]["blocks"])
    assert 0 < report["drift"]["total"]["relative"] < 1
    assert report["importance"]["texts"] == {"kept": 4, "new": 4}
    assert [p["step"] for p in report["interference"]["points"]] == [0, 2, 4]
    assert diag.start is None  # the snapshot is dropped after the report


def test_lora_drift_is_reported_as_the_merged_update(old_base: Path, tmp_path: Path) -> None:
    lora = make("lora", r=2, alpha=4)
    _, report, _ = train_with_diagnostics(old_base, tmp_path, [lora], steps=3, importance=False, every=3)
    drift = report["drift"]
    assert drift["what"] == "lora" and drift["memory_mib"] == 0.0
    cells = {(c["block"], c["module"]): c for c in drift["cells"]}
    assert cells[("0", "q_proj")]["drift"] > 0 and not cells[("0", "q_proj")]["frozen"]
    assert cells[("embed", "embed")]["frozen"] and cells[("head", "head")]["drift"] == 0.0
    assert [p["step"] for p in report["interference"]["points"]] == [0, 3]


def test_diagnostics_do_not_change_training(old_base: Path, tmp_path: Path) -> None:
    import torch

    from tests.diagnostics.conftest import train_new_task

    measured, report, _ = train_with_diagnostics(old_base, tmp_path / "on", [], steps=4, every=1)
    assert [p["step"] for p in report["interference"]["points"]] == [0, 1, 2, 3, 4]
    plain, _ = train_new_task(old_base, tmp_path / "off", [], steps=4)
    weights = dict(plain.named_parameters())
    assert all(torch.equal(p, weights[n]) for n, p in measured.named_parameters())
