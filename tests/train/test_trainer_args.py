"""The TrainingArguments a fine-tune runs with: the user's fields over forgetless's, TensorBoard's folder, records."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.integrations import TensorBoardCallback

from forgetless.errors import ForgetlessError
from forgetless.train.finetune import FinetuneSettings, finetune
from forgetless.train.trainer_args import trainer_kwargs, training_arguments
from tests.conftest import sentences


class Board(TensorBoardCallback):
    """transformers' TensorBoard callback without tensorboard installed: it only keeps the folder it is given."""

    def __init__(self) -> None:
        self.tb_writer, self.logging_dir, self._SummaryWriter = None, None, None


def train_with_board(tiny_model: Path, folder: Path, settings: FinetuneSettings) -> tuple[Board, dict]:
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.pad_token = tok.eos_token
    board = Board()
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    _, metrics = finetune(model, tok, sentences(8), folder, settings, callbacks=[board])
    return board, metrics


def test_tensorboard_writes_where_said_never_under_checkpoints_runs(tiny_model, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    settings = FinetuneSettings(steps=1, batch_size=2, max_length=16)
    board, metrics = train_with_board(tiny_model, tmp_path / "a", settings)
    assert board.logging_dir == str(tmp_path / "a" / "logs") == metrics["args"]["logging_dir"]
    settings.logging_dir = tmp_path / "run-logs"  # what a run passes: <output_dir>/logs/stage-N-NAME
    assert train_with_board(tiny_model, tmp_path / "b", settings)[0].logging_dir == str(tmp_path / "run-logs")
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "env"))  # transformers 5's own way wins over that
    assert train_with_board(tiny_model, tmp_path / "c", settings)[0].logging_dir == str(tmp_path / "env")
    settings.args = {"logging_dir": str(tmp_path / "mine")}  # and the config's logging_dir over everything
    board, metrics = train_with_board(tiny_model, tmp_path / "d", settings)
    assert board.logging_dir == str(tmp_path / "mine") == metrics["args"]["logging_dir"]


def test_user_fields_override_forgetless_choices_and_twins_are_refused(tmp_path) -> None:  # noqa: ANN001
    settings = FinetuneSettings(steps=10, warmup_steps=0.2, args={"lr_scheduler_type": "cosine", "max_grad_norm": 0.5})
    args = training_arguments(tmp_path, settings)
    assert (args.lr_scheduler_type.value, args.max_grad_norm, args.max_steps) == ("cosine", 0.5, 10)
    assert args.get_warmup_steps(10) == 2  # a fractional warmup_steps is transformers 5's warmup_ratio
    plain = training_arguments(tmp_path, FinetuneSettings(steps=10))
    assert (plain.lr_scheduler_type.value, plain.max_grad_norm) == ("constant", 1.0)  # forgetless's defaults
    with pytest.raises(ForgetlessError, match=r"args\['max_steps'\] says what the setting `steps` says"):
        trainer_kwargs(tmp_path, FinetuneSettings(args={"max_steps": 3}))
    with pytest.raises(ForgetlessError, match="forgetless trains a number of optimizer steps"):
        trainer_kwargs(tmp_path, FinetuneSettings(args={"num_train_epochs": 3}))
