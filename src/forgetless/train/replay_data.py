"""Experience replay for a script that owns its data: mix kept text into the user's `train_dataset`.

`forgetless run`'s replay method mixes kept text into each stage's data (methods/replay.py); a
script with its own Trainer only needs that data step, so this is `methods.replay.mixed_with`
(the same draw, ratio and shuffle) behind a signature that takes what such scripts hold.
"""

from __future__ import annotations

from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.methods.replay import mixed_with


def keep_texts(keep: Any, what: str = "keep") -> list[str]:
    """The texts of `keep`: a list of strings, or a `datasets.Dataset` with a `text` column."""
    if keep is None:
        return []
    if isinstance(keep, str):
        raise ForgetlessError(
            f"{what} is one string; it should be the texts to keep, one per example",
            f"pass a list of texts or a datasets.Dataset with a `text` column, e.g. {what}=[text1, text2, ...]",
        )
    columns = getattr(keep, "column_names", None)
    if columns is not None:
        if "text" not in columns:
            raise ForgetlessError(
                f"{what} is a dataset without a `text` column (columns: {', '.join(columns)})",
                "rename the column holding the texts: dataset.rename_column('content', 'text')",
            )
        keep = keep["text"]
    items = list(keep)
    texts = [t for t in items if isinstance(t, str) and t.strip()]
    if len(texts) != len(items):
        raise ForgetlessError(f"{what} holds empty or non-text items", "give non-empty strings only")
    return texts


def mix_replay(train_dataset: Any, keep: Any, ratio: float = 0.2, seed: int = 0) -> Any:
    """`train_dataset` with kept texts mixed in, so that a share `ratio` of the examples are replayed.

    Chaudhry et al. 2019 ("On Tiny Episodic Memories in Continual Learning"): round(n * ratio / (1 - ratio))
    texts are drawn from `keep` with a fixed seed (cycling when `keep` is shorter) and shuffled in with the
    n training examples, as `forgetless run`'s replay method does. Streams (`datasets.IterableDataset`, from
    `load_dataset(..., streaming=True)`) are never read whole: a streamed `train_dataset` is interleaved with
    `keep` (`datasets.interleave_datasets`, probabilities 1 - ratio and ratio, `keep` repeating); a streamed
    `keep` beside a `Dataset` gives only the texts the draw needs.

    Args:
        train_dataset: a `datasets.Dataset` or `IterableDataset` with a `text` column (other columns are
            dropped: replayed text has no values for them, except `loss_spans`), or a list of texts.
        keep: general text the model must keep: a list of strings, or a `Dataset` or `IterableDataset` with `text`.
        ratio: the share of the returned examples that are replayed, in (0, 1).
        seed: seeds the draw and the shuffle.

    Returns:
        A shuffled `datasets.Dataset` (an `IterableDataset` for a streamed `train_dataset`) with a `text`
        column, ready for Trainer's tokenization or SFTTrainer.
    """
    import datasets

    if not 0 < ratio < 1:
        raise ForgetlessError(
            f"mix_replay: ratio must be in (0, 1), got {ratio!r}", "e.g. ratio=0.2 (a fifth replayed)"
        )
    streams = [d for d in (train_dataset, keep) if isinstance(d, datasets.IterableDataset)]
    for stream in streams:
        columns = stream.column_names or list(next(iter(stream), {}))
        if "text" not in columns:
            raise ForgetlessError(
                f"mix_replay: a streamed dataset has no `text` column (columns: {', '.join(columns)})",
                "map it to plain text first: stream.map(lambda row: {'text': ...})",
            )
    if streams:
        pool = keep if isinstance(keep, datasets.IterableDataset) else keep_texts(keep)
        if not isinstance(train_dataset, datasets.IterableDataset):
            train_dataset = _as_dataset(train_dataset)
        return _own_columns(mixed_with(train_dataset, pool, ratio, seed), train_dataset)
    pool = keep_texts(keep)
    if not pool:
        raise ForgetlessError("mix_replay: keep is empty, so there is nothing to replay", "give general texts to keep")
    train_dataset = _as_dataset(train_dataset)
    return _own_columns(mixed_with(train_dataset, pool, ratio, seed), train_dataset)


def _own_columns(mixed: Any, train_dataset: Any) -> Any:
    """Only `text`, as given, unless the data came with forgetless's `loss_spans` (SFTTrainer reads `text`)."""
    columns = train_dataset.column_names or list(next(iter(train_dataset), {}))
    return mixed if "loss_spans" in columns else mixed.select_columns(["text"])


def _as_dataset(train_dataset: Any) -> Any:
    """`train_dataset` as a non-empty `datasets.Dataset` with a `text` column."""
    import datasets

    if isinstance(train_dataset, list):
        train_dataset = datasets.Dataset.from_dict({"text": keep_texts(train_dataset, "train_dataset")})
    if "text" not in train_dataset.column_names:
        raise ForgetlessError(
            f"mix_replay: train_dataset has no `text` column (columns: {', '.join(train_dataset.column_names)})",
            "map it to plain text first, e.g. a `text` column from "
            "tokenizer.apply_chat_template(messages, tokenize=False)",
        )
    if len(train_dataset) == 0:
        raise ForgetlessError("mix_replay: train_dataset is empty", "give at least one training example")
    return train_dataset
