"""The shared setup itself: plain full fine-tuning learns the new task and forgets the old one."""

from __future__ import annotations


def test_plain_fine_tuning_forgets(plain) -> None:  # noqa: ANN001
    assert plain.old_before < 3.0  # the base learned the old task
    assert plain.gain > 1.0  # and the fine-tune learns the new one
    assert plain.forgetting > 0.5  # while the old task's loss rises clearly: something to mitigate
