"""The README's Python examples run as written, on the tiny model: the README cannot drift from the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pytest

from tests.methods.forgetting_setup import NEW_TRAIN, OLD_TRAIN

README = Path(__file__).resolve().parent.parent / "README.md"


def examples(section: str) -> list[str]:
    """The ```python blocks of one README section, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start : end if end > 0 else None], flags=re.S)


@pytest.fixture
def yours(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """What the examples say is the user's: a model folder, training data, texts to keep."""
    monkeypatch.chdir(tmp_path)
    return {
        "model_path": str(tiny_model),
        "train_dataset": datasets.Dataset.from_dict({"text": NEW_TRAIN[:64]}),
        "keep_texts": OLD_TRAIN[:32],
    }


def test_the_readme_has_the_two_script_examples() -> None:
    blocks = examples("Use it in your own script")
    assert len(blocks) == 2 and "SFTTrainer" in blocks[0] and "Trainer(" in blocks[1]


def test_the_trl_example_runs_as_written(yours: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    exec(compile(examples("Use it in your own script")[0], "README.md (TRL example)", "exec"), dict(yours))
    audit = json.loads((tmp_path / "out" / "sft" / "audit" / "audit.json").read_text())
    assert {c["probe"] for c in audit["comparisons"]} == {"lambada_ppl", "arc_easy_val100", "triviaqa_val64"}
    assert audit["guard"]["budget"] == "lambada_ppl:10%,10pt"
    assert (tmp_path / "out" / "sft" / "audit" / "report.html").is_file()
    assert "budget" in capsys.readouterr().out
    assert any((tmp_path / "out" / "sft" / "forgetless-guard").iterdir())  # the guard kept its history


def test_the_plain_trainer_example_runs_as_written(yours: dict, capsys: pytest.CaptureFixture) -> None:
    namespace = dict(yours)
    exec(compile(examples("Use it in your own script")[1], "README.md (Trainer example)", "exec"), namespace)
    assert namespace["trainer"].state.global_step > 0
    assert "lambada_ppl" in capsys.readouterr().out
