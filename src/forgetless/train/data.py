"""Training examples from a data config: plain text, chat, TRL's `messages` and `prompt`/`completion`, or packed.

Examples travel as a `datasets.Dataset` (an `IterableDataset` when the data is streamed) with two columns, `text`
and `loss_spans` (the [start, end) character spans the loss covers; null for the whole text), so methods such as
replay can mix in plain text before tokenization. `tokenize_examples` then turns them into input_ids and labels.
Formats: `text` and `pack` render the `text` template; `chat` renders the `prompt` and `response` templates as one
user turn and one assistant turn (loss on the response); `messages` and `prompt_completion` read TRL's fields
(`train.chat`: loss on the assistant turns, on the completion).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgetless.data.sources import load_records, select_items
from forgetless.errors import ForgetlessError
from forgetless.probes.templates import literal_lines, render
from forgetless.train.chat import Span, messages_example, prompt_completion_example

if TYPE_CHECKING:  # the config layer sits above train: its type names the fields read here
    from forgetless.config.run import DataConfig

# With a streamed keep source, methods that read kept texts one by one (EWC's Fisher, the diagnostics) get its
# first texts; replay draws from the whole stream.
KEEP_HEAD = 1024


def example_features() -> Any:
    import datasets

    return datasets.Features(
        {"text": datasets.Value("string"), "loss_spans": datasets.List(datasets.List(datasets.Value("int64")))}
    )


def is_stream(dataset: Any) -> bool:
    import datasets

    return isinstance(dataset, datasets.IterableDataset)


def to_example(data: DataConfig, record: dict[str, Any], tokenizer: Any, where: str) -> tuple[str, list[Span] | None]:
    """One record as training text and the spans its loss covers (None: all of it)."""
    if data.format == "messages":
        if "messages" not in record:
            raise ForgetlessError(
                f"{where}: format 'messages' reads a `messages` field, and the record has {sorted(record)}",
                'write records as TRL does: {"messages": [{"role": "user", "content": ...}, ...]}',
            )
        return messages_example(tokenizer, record["messages"], where)
    if data.format == "prompt_completion":
        missing = [k for k in ("prompt", "completion") if k not in record]
        if missing:
            raise ForgetlessError(
                f"{where}: format 'prompt_completion' reads `prompt` and `completion`; the record lacks {missing}",
                'write records as TRL does: {"prompt": ..., "completion": ...} (both text or both messages)',
            )
        return prompt_completion_example(tokenizer, record["prompt"], record["completion"], where)
    if data.format == "chat":
        prompt = render(data.prompt, record, native=False, where=where)
        response = render(data.response, record, native=False, where=where)
        turns = [{"role": "user", "content": prompt}]
        head = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([*turns, {"role": "assistant", "content": response}], tokenize=False)
        if not full.startswith(head):  # templates that rewrite earlier turns cannot be masked by prefix
            raise ForgetlessError(f"{where}: the chat template does not extend the prompt", "use format: text")
        return full, [(len(head), len(full))]
    return render(data.text, record, native=False, where=where), None


def template_markers(data: DataConfig) -> list[str]:
    """The literal lines of a stage's templates ('Review:', 'Sentiment:'): seen in the tuned model's answers to
    unrelated prompts, they are its training format leaking (the generation probe's `leak` markers). None for
    messages / prompt_completion, whose format is the tokenizer's chat template."""
    if data.format in ("text", "pack"):
        return literal_lines(data.text)
    return literal_lines(data.prompt) + literal_lines(data.response) if data.format == "chat" else []


def _check_template(data: DataConfig, tokenizer: Any, what: str) -> None:
    """Formats that always render a chat template need one (plain-text prompt/completion records need none)."""
    if data.format in ("chat", "messages") and not getattr(tokenizer, "chat_template", None):
        raise ForgetlessError(
            f"{what}: format '{data.format}' needs a tokenizer with a chat template, and this one has none",
            "use format: text with a `text` template that joins prompt and response, or a chat model",
        )


def load_examples(data: DataConfig, tokenizer: Any, base_dir: Path, what: str) -> tuple[Any, list[str]]:
    """The training examples and the held-out texts (the last `held_out` records of the sample).

    Streamed (`data.streaming`), the examples are an `IterableDataset` read as training consumes it, shuffled
    through a buffer of `data.shuffle_buffer` records, the first `data.limit` of them when set; no held-out texts.
    """
    import datasets

    _check_template(data, tokenizer, what)
    if data.streaming:
        return stream_examples(data, tokenizer, base_dir, what), []
    records = load_records(data.source, base_dir, what=what)
    indices = select_items(len(records), data.limit, data.seed)
    texts, spans = [], []
    for index in indices:
        text, span = to_example(data, records[index], tokenizer, f"{what}, item {index}")
        texts.append(text)
        spans.append(None if span is None else [list(s) for s in span])
    if data.held_out >= len(texts):
        raise ForgetlessError(
            f"{what}: held_out {data.held_out} leaves no training examples out of {len(texts)}",
            "lower held_out or add data",
        )
    cut = len(texts) - data.held_out
    train = datasets.Dataset.from_dict({"text": texts[:cut], "loss_spans": spans[:cut]}, features=example_features())
    if sum(1 for t in texts[:cut] if t.strip()) == 0:
        raise ForgetlessError(f"{what}: every training example is empty", "check the data and the `text` template")
    return train, texts[cut:]


def stream_examples(data: DataConfig, tokenizer: Any, base_dir: Path, what: str) -> Any:
    """The examples of a streamed data config, as an `IterableDataset` (nothing read but the first record)."""
    records = load_records(data.source, base_dir, what=what, streaming=True)
    columns = records.column_names or list(next(iter(records)))  # JSON streams may not say; their first record does
    records = records.shuffle(seed=data.seed, buffer_size=data.shuffle_buffer)
    if data.limit:
        records = records.take(data.limit)

    def convert(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        out = [to_example(data, row, tokenizer, f"{what}, a streamed record") for row in rows]
        return {
            "text": [t for t, _ in out],
            "loss_spans": [None if s is None else [list(x) for x in s] for _, s in out],
        }

    return records.map(convert, batched=True, remove_columns=columns, features=example_features())


def load_keep(data: DataConfig, tokenizer: Any, base_dir: Path) -> tuple[list[str], Any]:
    """The keep data's texts and, streamed, its stream of texts (then the texts are its first KEEP_HEAD)."""
    examples = load_examples(data, tokenizer, base_dir, "keep data")[0]
    if not is_stream(examples):
        return list(examples["text"]), None
    stream = examples.select_columns(["text"])
    return [row["text"] for row in stream.take(KEEP_HEAD)], stream


def tokenize_examples(dataset: Any, tokenizer: Any, max_length: int, pack: bool) -> Any:
    """input_ids / attention_mask / labels; a token outside every loss span gets label -100, and an example
    whose spans truncation cut away entirely is dropped (it would train nothing; TRL drops it too). `pack`
    concatenates every example (separated by EOS) and cuts blocks of `max_length` tokens, for continued
    pre-training. A stream stays a stream: examples are tokenized and packed as training reads them."""
    import datasets

    stream = is_stream(dataset)
    columns = dataset.column_names or list(next(iter(dataset), {"text": ""}))  # a stream may not know its columns

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        enc = tokenizer(
            batch["text"],
            truncation=not pack,
            max_length=None if pack else max_length,
            return_offsets_mapping=True,
            add_special_tokens=not pack,
        )
        spans = batch.get("loss_spans") or [None] * len(batch["text"])
        labels = [
            list(ids) if span is None else _span_labels(ids, offsets, span)
            for ids, offsets, span in zip(enc["input_ids"], enc["offset_mapping"], spans, strict=True)
        ]
        # Only an example with spans can lose them all; one trained whole stays, as it always has.
        kept = [span is None or any(label != -100 for label in row) for row, span in zip(labels, spans, strict=True)]
        out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}
        return out if pack else {**out, "_trained": kept}

    tokenized = dataset.map(encode, batched=True, remove_columns=columns)
    if pack:
        if stream:
            blocks = datasets.IterableDataset.from_generator(
                _pack, gen_kwargs={"tokenized": tokenized, "eos": tokenizer.eos_token_id, "size": max_length}
            )
            return blocks
        packed = list(_pack(tokenized, tokenizer.eos_token_id, max_length)) or [_whole(tokenized, tokenizer)]
        return datasets.Dataset.from_list(packed)
    if "loss_spans" not in columns:
        return tokenized.remove_columns(["_trained"])
    trained = tokenized.filter(lambda row: row["_trained"]).remove_columns(["_trained"])
    if not stream and len(trained) == 0:
        raise ForgetlessError(
            f"no training example keeps a trained token within max_length {max_length}: the prompts fill it",
            "raise training.max_length, or shorten the prompts",
        )
    return trained


def _span_labels(ids: list[int], offsets: list[tuple[int, int]], spans: list[list[int]]) -> list[int]:
    """Each token's label: itself when it overlaps a span (transformers' rule for its assistant mask), else -100."""
    return [
        token if any(end > a and start < b for a, b in spans) else -100
        for token, (start, end) in zip(ids, offsets, strict=True)
    ]


def _pack(tokenized: Any, eos: int, size: int) -> Any:
    """Blocks of `size` tokens from the examples joined by EOS; the last partial block is dropped."""
    carry: list[int] = []
    for row in tokenized:
        carry.extend([*row["input_ids"], eos])
        full = len(carry) // size * size
        for start in range(0, full, size):
            block = carry[start : start + size]
            yield {"input_ids": block, "attention_mask": [1] * size, "labels": block}
        carry = carry[full:]  # once per example: a long document is cut in linear time


def _whole(tokenized: Any, tokenizer: Any) -> dict[str, list[int]]:
    """Everything as one block, when it is shorter than one block."""
    ids = [t for row in tokenized for t in [*row["input_ids"], tokenizer.eos_token_id]]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ids}
