from __future__ import annotations

from pathlib import Path

import pytest

from tests.methods.forgetting_setup import Outcome, fine_tune_new


@pytest.fixture(scope="session")
def plain(old_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """Plain full fine-tuning on the new task: the forgetting every mitigation must beat."""
    return fine_tune_new(old_base, [], tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="session")
def plain_reorder(old_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """Plain full fine-tuning on the reordered old words: forgetting inside the blocks, not the head."""
    return fine_tune_new(old_base, [], tmp_path_factory.mktemp("plain-reorder"), task="reorder")
