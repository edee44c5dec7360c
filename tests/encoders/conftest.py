"""Fixtures for encoder tests: a tiny BERT, its tokenizer, a base pretrained on the joint task, labelled data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.encoders.encoder_setup import build_bert, build_tokenizer, pretrain_base


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved bare 2-layer BERT (no head, like the packaged MiniLM) with its word-level tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tok = build_tokenizer(folder)
    build_bert(folder, len(tok))
    return folder


@pytest.fixture(scope="session")
def encoder_base(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT after pretraining on the joint task (encoder_setup.pretrain_base): a base that can forget."""
    return pretrain_base(tiny_bert, tmp_path_factory.mktemp("encoder-base"))
