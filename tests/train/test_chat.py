"""Chat data as TRL writes it: the loss covers exactly the assistant turns (messages) or the completion.

The packaged SmolLM2 tokenizer's template (ChatML with a default system prompt, no `{% generation %}` markers)
is the real case. Each expectation is computed another way than forgetless computes it: token ids of
prefixes of the conversation (TRL's rule, on tokens rather than characters), transformers' own assistant
mask on a copy of the template with markers, and the decoded text of the labelled tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from forgetless.config import DataConfig
from forgetless.errors import ForgetlessError
from forgetless.methods.replay import mixed_with
from forgetless.train.data import load_examples, tokenize_examples

CONVERSATIONS = [
    [
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "What colour is the sky?"},
        {"role": "assistant", "content": "It is blue on a clear day."},
        {"role": "user", "content": "And at night?"},
        {"role": "assistant", "content": "Dark, with stars."},
    ],
    [  # no system turn: SmolLM2's template adds its default system prompt, which is not trained
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "Seven."},
        {"role": "user", "content": "A larger one?"},
        {"role": "assistant", "content": "Thirteen."},
        {"role": "user", "content": "Thanks."},  # a last user turn: trained on nothing
    ],
]
# SmolLM2's template with the assistant's content and end of turn between generation markers.
MARKED_SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endgeneration %}{% else %}{{ message['content'] + '<|im_end|>' + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def smol(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The packaged SmolLM2-135M-Instruct tokenizer, converted from its GGUF once (about 15 s of GGUF parsing)
    and kept in pytest's cache folder, so later runs load it in well under a second."""
    from forgetless.models.default import packaged_gguf

    gguf = packaged_gguf()
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    name = f"smollm2-tokenizer-{gguf.stat().st_size}"
    folder = Path(cache.mkdir(name)) if cache else tmp_path_factory.mktemp(name)
    if not (folder / "tokenizer.json").is_file():
        partial = folder.with_name(folder.name + ".partial")
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(partial)
        for file in partial.iterdir():
            file.replace(folder / file.name)
    return AutoTokenizer.from_pretrained(folder)


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def labelled_rows(tok, tmp_path: Path, rows: list[dict], fmt: str, max_length: int = 512) -> list[dict]:  # noqa: ANN001
    jsonl(tmp_path / "chat.jsonl", rows)
    train, _ = load_examples(DataConfig(source="chat.jsonl", format=fmt), tok, tmp_path, "stage")
    return list(tokenize_examples(train, tok, max_length, pack=False))


def trained(row: dict) -> list[int]:
    return [i for i, label in enumerate(row["labels"]) if label != -100]


def prefix_positions(tok, messages: list[dict]) -> list[int]:  # noqa: ANN001
    """Assistant token positions from token ids of prefixes: turn k is what messages[:k+1] adds to messages[:k]
    with the generation prompt (TRL's prompt-completion rule, on token ids)."""
    positions = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        head = tok.apply_chat_template(messages[:k], add_generation_prompt=True, tokenize=True, return_dict=False)
        upto = tok.apply_chat_template(messages[: k + 1], tokenize=True, return_dict=False)
        assert upto[: len(head)] == head
        positions += range(len(head), len(upto))
    return positions


@pytest.mark.real
def test_smollm2_messages_train_exactly_the_assistant_tokens(smol, tmp_path) -> None:  # noqa: ANN001
    rows = labelled_rows(smol, tmp_path, [{"messages": m} for m in CONVERSATIONS], "messages")
    for row, messages in zip(rows, CONVERSATIONS, strict=True):
        full = smol.apply_chat_template(messages, tokenize=True, return_dict=False)
        assert row["input_ids"] == full  # the text is the template's, tokenized as the template tokenizes it
        assert trained(row) == prefix_positions(smol, messages)
        marked = smol.apply_chat_template(
            messages, chat_template=MARKED_SMOLLM2, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        assert marked["input_ids"] == full
        assert trained(row) == [i for i, m in enumerate(marked["assistant_masks"]) if m]
        # Read back: each assistant turn's content and its end of turn, nothing of the system or user turns.
        answers = "".join(f"{m['content']}<|im_end|>\n" for m in messages if m["role"] == "assistant")
        assert smol.decode([row["labels"][i] for i in trained(row)]) == answers
    assert "SmolLM" in smol.decode(rows[1]["input_ids"])  # the default system prompt is there, untrained


@pytest.mark.real
def test_smollm2_prompt_completion(smol, tmp_path) -> None:  # noqa: ANN001
    conversational = {
        "prompt": [{"role": "user", "content": "What colour is grass?"}],
        "completion": [{"role": "assistant", "content": "Green."}],
    }
    plain = {"prompt": "The capital of France is", "completion": " Paris."}
    chat_row, plain_row = labelled_rows(smol, tmp_path, [conversational, plain], "prompt_completion")
    messages = conversational["prompt"] + conversational["completion"]
    assert trained(chat_row) == prefix_positions(smol, messages)
    # Plain text: the completion and an EOS (TRL adds it, so the model learns to stop), not the prompt.
    prompt_ids = smol("The capital of France is")["input_ids"]
    assert trained(plain_row) == list(range(len(prompt_ids), len(plain_row["input_ids"])))
    assert smol.decode([plain_row["labels"][i] for i in trained(plain_row)]) == " Paris." + smol.eos_token


def test_generation_markers_use_transformers_mask(tiny_model, tmp_path) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(tiny_model)
    # Markers around the content only: the end of turn is not trained, which the prefix rule would train.
    tok.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {% if m['role'] == 'assistant' %}{% generation %}"
        "{{ m['content'] }}{% endgeneration %}{% else %}{{ m['content'] }}{% endif %}</s>\n{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant: {% endif %}"
    )
    messages = CONVERSATIONS[0]
    (row,) = labelled_rows(tok, tmp_path, [{"messages": messages}], "messages")
    mask = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert trained(row) == [i for i, m in enumerate(mask["assistant_masks"]) if m] and trained(row)
    assert "</s>" not in tok.decode([row["labels"][i] for i in trained(row)])


def test_a_template_that_rewrites_earlier_turns_is_refused(tiny_model, tmp_path) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(tiny_model)
    # Earlier assistant turns are dropped once a later turn follows (as reasoning templates drop thoughts).
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'assistant' or loop.last %}"
        "{{ m['role'] }}: {{ m['content'] }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    with pytest.raises(ForgetlessError, match="renders earlier turns differently") as error:
        labelled_rows(tok, tmp_path, [{"messages": CONVERSATIONS[0]}], "messages")
    assert "{% generation %}" in str(error.value.fix)


@pytest.mark.parametrize(
    ("row", "fmt", "message"),
    [
        ({"text": "hello"}, "messages", "reads a `messages` field"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages", "has no assistant turn"),
        ({"messages": "hi"}, "messages", "is not a list of messages"),
        ({"prompt": "p"}, "prompt_completion", r"lacks \['completion'\]"),
        ({"prompt": "p", "completion": [{"role": "assistant", "content": "c"}]}, "prompt_completion", "both"),
    ],
)
def test_bad_chat_records(tiny_model, tmp_path, row, fmt, message) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(ForgetlessError, match=message):
        labelled_rows(tok, tmp_path, [row], fmt)


def test_truncation_that_leaves_nothing_to_train_drops_the_example(tiny_model, tmp_path) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(tiny_model)
    long_prompt = {"prompt": "The cat sees a red ball. " * 20, "completion": "yes"}
    rows = labelled_rows(
        tok, tmp_path, [long_prompt, {"prompt": "A dog", "completion": " runs"}], "prompt_completion", 16
    )
    assert len(rows) == 1 and tok.decode(rows[0]["input_ids"]).startswith("A dog")
    with pytest.raises(ForgetlessError, match="no training example keeps a trained token"):
        labelled_rows(tok, tmp_path, [long_prompt], "prompt_completion", 16)


def test_replay_keeps_the_chat_spans_and_trains_replayed_text_whole(tiny_model, tmp_path) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    jsonl(tmp_path / "chat.jsonl", [{"messages": CONVERSATIONS[0]}] * 4)
    train, _ = load_examples(DataConfig(source="chat.jsonl", format="messages"), tok, tmp_path, "stage")
    mixed = mixed_with(train, ["The cat sees a red ball."], 0.5, seed=0)
    rows = list(tokenize_examples(mixed, tok, 256, pack=False))
    replayed = [r for r in rows if r["labels"] == r["input_ids"]]
    chats = [r for r in rows if r["labels"] != r["input_ids"]]
    assert len(replayed) == 4 and len(chats) == 4
    for row in chats:
        labelled = tok.decode([row["labels"][i] for i in trained(row)])
        assert "It is blue" in labelled and "Dark, with stars." in labelled and "What colour" not in labelled


def test_examples_trained_whole_are_never_dropped(tiny_model) -> None:  # noqa: ANN001
    import datasets

    tok = AutoTokenizer.from_pretrained(tiny_model)
    texts = datasets.Dataset.from_dict({"text": ["The cat sees a red ball.", "", "A dog likes the blue sky."]})
    assert len(tokenize_examples(texts, tok, 16, pack=False)) == 3  # as before: the data's length sets the order


def test_a_template_trl_ships_a_marked_copy_of_is_masked_through_it(tiny_model) -> None:  # noqa: ANN001
    trl = pytest.importorskip("trl")
    from forgetless.train.chat import messages_example

    tok = AutoTokenizer.from_pretrained(tiny_model)
    # Qwen3's template drops an earlier turn's reasoning once a later turn follows: prefixes cannot find the turns.
    tok.chat_template = (Path(trl.__file__).parent / "chat_templates" / "qwen3.jinja").read_text()
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHello."},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "<think>\nok\n</think>\n\nBye."},
    ]
    assert "hmm" not in tok.apply_chat_template(messages, tokenize=False)
    text, spans = messages_example(tok, messages, "t")  # TRL's training copy keeps every turn as written
    assert [text[a:b] for a, b in spans] == [
        "<think>\nhmm\n</think>\n\nHello.<|im_end|>\n",
        "<think>\nok\n</think>\n\nBye.<|im_end|>\n",
    ]


def test_markers_that_cover_nothing_are_an_error(tiny_model, tmp_path) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% generation %}{% endgeneration %}"
    )
    with pytest.raises(ForgetlessError, match="markers cover no token"):
        labelled_rows(tok, tmp_path, [{"messages": CONVERSATIONS[0]}], "messages")
