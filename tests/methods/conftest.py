from __future__ import annotations

from pathlib import Path

import pytest

from tests.methods.forgetting_setup import Outcome, fine_tune_new, train_old_base


@pytest.fixture(scope="session")
def old_base(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model after learning the old task: the base every method fine-tunes from."""
    return train_old_base(tiny_model, tmp_path_factory.mktemp("old-base"))


@pytest.fixture(scope="session")
def plain(old_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """Plain full fine-tuning on the new task: the forgetting every mitigation must beat."""
    return fine_tune_new(old_base, [], tmp_path_factory.mktemp("plain"))
