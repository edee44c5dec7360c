"""Streamed training data: a dataset in the hub's layout (Parquet shards) is read as training uses it.

The shards hold 800,000 records; every record a stream turns into an example passes `to_example`, which the
tests count: training a few steps, replaying from a streamed keep source, validating a config all read a few
thousand records at most (the shuffle buffer and the batches of `map`), never the set.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from forgetless.config import DataConfig
from forgetless.config.data_check import stage_data_problems
from forgetless.errors import ConfigError
from forgetless.methods import TrainContext
from forgetless.methods.replay import Replay, ReplayConfig
from forgetless.train import data as train_data
from forgetless.train.data import load_examples, load_keep, tokenize_examples
from forgetless.train.finetune import FinetuneSettings, finetune
from forgetless.train.replay_data import mix_replay

SHARDS, PER_SHARD = 4, 200_000
READ_AT_MOST = 10_000  # the buffer (1,000) and a few batches of map (1,000 each), with room


@pytest.fixture(autouse=True)
def no_shutdown_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """datasets sleeps 5 s whenever a read of several Parquet shards at once stops early (its guard against an
    Arrow thread-shutdown crash, apache/arrow#45214); these tests stop reads early on purpose, many times."""
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)


def write_hub_layout(folder: Path, word: str) -> Path:
    """`folder/data/train-0000i-of-00004.parquet` and a README, as a dataset repository on the hub lays them out."""
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text(f"# {word}\n")
    for shard in range(SHARDS):
        start = shard * PER_SHARD
        texts = [f"{word} {i} sees a red ball." for i in range(start, start + PER_SHARD)]
        shard_path = folder / "data" / f"train-{shard:05d}-of-{SHARDS:05d}.parquet"
        datasets.Dataset.from_dict({"text": texts}).to_parquet(shard_path, batch_size=10_000)  # row groups of 10,000
    return folder


@pytest.fixture(scope="module")
def new_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hub_layout(tmp_path_factory.mktemp("new"), "new")


@pytest.fixture(scope="module")
def keep_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hub_layout(tmp_path_factory.mktemp("keep"), "kept")


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the records turned into examples (every streamed record passes `to_example`)."""
    count = [0]
    original = train_data.to_example

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        count[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(train_data, "to_example", counting)
    return count


@pytest.fixture
def tok(tiny_model: Path):  # noqa: ANN201
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def test_training_reads_only_what_its_steps_use(tiny_model, new_shards, tok, read, tmp_path) -> None:  # noqa: ANN001
    train, held_out = load_examples(DataConfig(source=str(new_shards), streaming=True), tok, tmp_path, "stage")
    assert isinstance(train, datasets.IterableDataset) and held_out == []
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    settings = FinetuneSettings(steps=3, batch_size=4, max_length=32, learning_rate=1e-3)
    _, metrics = finetune(model, tok, train, tmp_path / "out", settings)
    assert [step for step, _ in metrics["loss_curve"]] == [1, 2, 3]
    assert 12 <= read[0] <= READ_AT_MOST  # 800,000 records in the shards


def test_a_hub_layout_folder_is_a_dataset_not_documents(new_shards, tok, tmp_path) -> None:  # noqa: ANN001
    first = next(iter(load_examples(DataConfig(source=str(new_shards), streaming=True), tok, tmp_path, "s")[0]))
    assert first["text"].startswith("new ") and first["text"].endswith("sees a red ball.")
    assert first["loss_spans"] is None


def test_replay_interleaves_a_streamed_keep_source(new_shards, keep_shards, tok, read, tmp_path) -> None:  # noqa: ANN001
    keep_texts, keep_stream = load_keep(DataConfig(source=str(keep_shards), streaming=True), tok, tmp_path)
    assert len(keep_texts) == train_data.KEEP_HEAD and keep_stream is not None
    stream, _ = load_examples(DataConfig(source=str(new_shards), streaming=True), tok, tmp_path, "stage")
    context = TrainContext(tokenizer=tok, keep_texts=keep_texts, keep_stream=keep_stream)
    mixed = Replay(ReplayConfig(ratio=0.25)).training_data(stream, context)
    texts = [row["text"] for row in mixed.take(4000)]
    share = sum(t.startswith("kept") for t in texts) / len(texts)
    # 0.25 +- 0.035: 3.5 binomial standard errors on 4,000 draws (a fixed seed: the same share every run).
    assert abs(share - 0.25) < 0.035
    assert read[0] <= 3 * READ_AT_MOST  # the keep head, then a bounded prefix of both streams


def test_a_streamed_keep_beside_data_in_memory_gives_only_the_draw(keep_shards, tok, read, tmp_path) -> None:  # noqa: ANN001
    _, keep_stream = load_keep(DataConfig(source=str(keep_shards), streaming=True), tok, tmp_path)
    read[0] = 0
    train = datasets.Dataset.from_dict({"text": [f"new {i}" for i in range(300)]})
    mixed = mix_replay(train, keep_stream, ratio=0.25, seed=0)
    assert len(mixed) == 400 and sum(t.startswith("kept") for t in mixed["text"]) == 100
    assert read[0] <= READ_AT_MOST
    streamed = mix_replay(keep_stream, ["The cat sees a red ball."] * 3, ratio=0.5, seed=0)
    assert isinstance(streamed, datasets.IterableDataset) and streamed.column_names == ["text"]


def test_streamed_packing_cuts_the_same_blocks(tok, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": f"def f{i}(a, b):\n    return a + b\n" * 3}) + "\n" for i in range(20)))
    whole, _ = load_examples(DataConfig(source="docs.jsonl", format="pack"), tok, tmp_path, "stage")
    # A buffer of one record keeps the file's order, so both read the documents in the same order.
    config = DataConfig(source="docs.jsonl", format="pack", streaming=True, shuffle_buffer=1)
    streamed, _ = load_examples(config, tok, tmp_path, "stage")
    expected = tokenize_examples(whole, tok, 32, pack=True)["input_ids"]
    got = [row["input_ids"] for row in tokenize_examples(streamed, tok, 32, pack=True)]
    assert got == expected and len(got) > 5 and all(len(block) == 32 for block in got)


def test_streaming_with_held_out_is_refused_with_the_fix(new_shards, tmp_path) -> None:  # noqa: ANN001
    from forgetless.config.run import load_run_config

    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tmp_path}\nstages:\n  - name: s\n    data: {{source: {new_shards}, streaming: true, held_out: 50}}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_run_config(config)
    (problem,) = [p for p in error.value.problems if p.startswith("stages.0.data")]
    assert "held_out 50 takes the last records of the data, which a stream reaches only at its end" in problem
    assert "a file of their own and score it as a perplexity probe of the suite, or set streaming: false" in problem


def test_validation_reads_one_record_of_a_stream(new_shards, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    calls = []
    original = datasets.load_dataset

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(kwargs.get("streaming", False))
        return original(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    entry = {"source": str(new_shards), "streaming": True, "text": "{{ body }}"}
    (problem,) = stage_data_problems("stages.0.data", entry, tmp_path)
    assert problem.startswith("stages.0.data.text: first record of") and "the item's fields are: text" in problem
    assert calls == [True]  # never a non-streamed load of the 800,000 records
    assert stage_data_problems("stages.0.data", {**entry, "text": "{{ text }}"}, tmp_path) == []


def test_diagnostics_read_the_head_of_a_stream(new_shards, tok, read, tmp_path) -> None:  # noqa: ANN001
    from forgetless.diagnostics.stage import _texts

    stream, _ = load_examples(DataConfig(source=str(new_shards), streaming=True), tok, tmp_path, "stage")
    texts = _texts(stream, 5)
    assert len(texts) == 5 and all(t.startswith("new ") for t in texts)
    assert read[0] <= READ_AT_MOST
