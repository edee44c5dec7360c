"""Training data: text templates, chat with the loss on the response only, packing, bad input."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from forgetless.config import DataConfig
from forgetless.errors import ForgetlessError
from forgetless.train.data import load_examples, tokenize_examples

CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


@pytest.fixture
def tok(tiny_model):  # noqa: ANN001, ANN201
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def jsonl(path, rows):  # noqa: ANN001, ANN201
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_text_template_and_held_out(tok, tmp_path) -> None:  # noqa: ANN001
    jsonl(tmp_path / "d.jsonl", [{"a": f"x{i}", "b": i} for i in range(10)])
    data = DataConfig(source="d.jsonl", text="{{ a }} is {{ b }}", held_out=3)
    train, held = load_examples(data, tok, tmp_path, "stage")
    assert train["text"][:2] == ["x0 is 0", "x1 is 1"] and len(train) == 7
    assert held == ["x7 is 7", "x8 is 8", "x9 is 9"]


def test_chat_masks_the_prompt(tok, tmp_path) -> None:  # noqa: ANN001
    tok.chat_template = CHAT_TEMPLATE
    jsonl(tmp_path / "c.jsonl", [{"prompt": "The cat sees", "response": "a red ball"}])
    train, _ = load_examples(DataConfig(source="c.jsonl", format="chat"), tok, tmp_path, "stage")
    (row,) = tokenize_examples(train, tok, 64, pack=False)
    labelled = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert "a red ball" in tok.decode(labelled) and "The cat sees" not in tok.decode(labelled)
    assert row["labels"][0] == -100 and row["labels"][-1] != -100


def test_chat_without_template_is_an_error(tok, tmp_path) -> None:  # noqa: ANN001
    tok.chat_template = None
    jsonl(tmp_path / "c.jsonl", [{"prompt": "p", "response": "r"}])
    with pytest.raises(ForgetlessError, match="needs a tokenizer with a chat template"):
        load_examples(DataConfig(source="c.jsonl", format="chat"), tok, tmp_path, "stage")


def test_pack_makes_full_blocks(tok, tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "src").mkdir()
    for i in range(3):
        (tmp_path / "src" / f"m{i}.py").write_text(f"def f{i}(a, b):\n    return a + b\n" * 20)
    train, _ = load_examples(DataConfig(source="src", format="pack"), tok, tmp_path, "stage")
    blocks = tokenize_examples(train, tok, 32, pack=True)
    assert len(blocks) > 3 and all(len(ids) == 32 for ids in blocks["input_ids"])
    assert blocks["labels"] == blocks["input_ids"]


@pytest.mark.parametrize(
    ("rows", "held_out", "message"),
    [
        ([], 0, "is empty"),
        ([{"text": "a"}, {"text": "b"}], 2, "held_out 2 leaves no training examples"),
        ([{"text": " "}], 0, "every training example is empty"),
    ],
)
def test_bad_data(tok, tmp_path, rows, held_out, message) -> None:  # noqa: ANN001
    jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(ForgetlessError, match=message):
        load_examples(DataConfig(source="d.jsonl", held_out=held_out), tok, tmp_path, "stage")
