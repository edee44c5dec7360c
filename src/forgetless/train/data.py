"""Training examples from a data config: plain text, chat (loss on the response only), or packed.

Examples travel as a `datasets.Dataset` with two columns, `text` and `prompt_chars` (how many
leading characters are prompt, excluded from the loss), so methods such as replay can mix in plain
text before tokenization. `tokenize_examples` then turns them into input_ids and labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgetless.data.sources import load_records, select_items
from forgetless.errors import ForgetlessError
from forgetless.probes.templates import render

if TYPE_CHECKING:  # the config layer sits above train: its type names the fields read here
    from forgetless.config.run import DataConfig


def load_examples(data: DataConfig, tokenizer: Any, base_dir: Path, what: str) -> tuple[Any, list[str]]:
    """The training examples and the held-out texts (the last `held_out` records of the sample)."""
    import datasets

    records = load_records(data.source, base_dir, what=what)
    indices = select_items(len(records), data.limit, data.seed)
    if data.format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ForgetlessError(
            f"{what}: format 'chat' needs a tokenizer with a chat template, and this one has none",
            "use format: text with a `text` template that joins prompt and response, or a chat model",
        )
    texts, prompt_chars = [], []
    for index in indices:
        record, where = records[index], f"{what}, item {index}"
        if data.format == "chat":
            prompt = render(data.prompt, record, native=False, where=where)
            response = render(data.response, record, native=False, where=where)
            turns = [{"role": "user", "content": prompt}]
            head = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
            full = tokenizer.apply_chat_template([*turns, {"role": "assistant", "content": response}], tokenize=False)
            if not full.startswith(head):  # templates that rewrite earlier turns cannot be masked by prefix
                raise ForgetlessError(f"{where}: the chat template does not extend the prompt", "use format: text")
            texts.append(full)
            prompt_chars.append(len(head))
        else:
            texts.append(render(data.text, record, native=False, where=where))
            prompt_chars.append(0)
    if data.held_out >= len(texts):
        raise ForgetlessError(
            f"{what}: held_out {data.held_out} leaves no training examples out of {len(texts)}",
            "lower held_out or add data",
        )
    cut = len(texts) - data.held_out
    train = datasets.Dataset.from_dict({"text": texts[:cut], "prompt_chars": prompt_chars[:cut]})
    if sum(1 for t in texts[:cut] if t.strip()) == 0:
        raise ForgetlessError(f"{what}: every training example is empty", "check the data and the `text` template")
    return train, texts[cut:]


def tokenize_examples(dataset: Any, tokenizer: Any, max_length: int, pack: bool) -> Any:
    """input_ids / attention_mask / labels; prompt tokens get label -100. `pack` concatenates every
    example (separated by EOS) and cuts blocks of `max_length` tokens, for continued pre-training."""
    import datasets

    if "prompt_chars" not in dataset.column_names:
        dataset = dataset.add_column("prompt_chars", [0] * len(dataset))

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        enc = tokenizer(
            batch["text"],
            truncation=not pack,
            max_length=None if pack else max_length,
            return_offsets_mapping=True,
            add_special_tokens=not pack,
        )
        labels = []
        for ids, offsets, cut in zip(enc["input_ids"], enc["offset_mapping"], batch["prompt_chars"], strict=True):
            labels.append([-100 if end <= cut and cut else token for token, (_, end) in zip(ids, offsets, strict=True)])
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}

    tokenized = dataset.map(encode, batched=True, remove_columns=dataset.column_names)
    if not pack:
        return tokenized
    stream: list[int] = []
    for ids in tokenized["input_ids"]:
        stream.extend([*ids, tokenizer.eos_token_id])
    blocks = [stream[i : i + max_length] for i in range(0, len(stream) - max_length + 1, max_length)] or [stream]
    return datasets.Dataset.from_dict(
        {"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks], "labels": blocks}
    )
