"""The shared setup itself: plain full fine-tuning learns the new task and forgets the old one."""

from __future__ import annotations


def test_plain_fine_tuning_forgets(plain, plain_reorder) -> None:  # noqa: ANN001
    # Measured over seeds 0-2 and the CPU kernel settings (bench/behaviour_margins.py): the old task's held-out
    # loss 0.776-0.787 nats (a uniform guess: 6.0); arithmetic gain 9.15-9.36, forgetting 0.67-1.04; reorder gain
    # 5.70-6.40, forgetting 3.09-3.49.
    assert plain.old_before < 1.5  # the base learned the old task well
    assert plain.gain > 5.0 and plain_reorder.gain > 3.0  # the fine-tunes learn the new tasks
    assert plain.forgetting > 0.4 and plain_reorder.forgetting > 1.5  # and the old loss rises: something to mitigate
