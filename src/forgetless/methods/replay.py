"""Experience replay: mix text of what must be kept into the fine-tuning data at a fixed ratio.

The simplest strong baseline of continual learning (Chaudhry et al. 2019, "On Tiny Episodic
Memories in Continual Learning"; for LLMs, e.g. Scialom et al. 2022). With `ratio` r, a share r
of the training examples are replayed general text: len(train) * r / (1 - r) of them, drawn with a
fixed seed from `context.keep_texts` (repeating when there are fewer), then shuffled in. With
several stages, each stage's training data joins the buffer for the next stage.

Streamed data (`datasets.IterableDataset`) is never loaded whole: a streamed stage is interleaved with the
replayed texts (`datasets.interleave_datasets` with probabilities 1 - r and r, the replayed side repeating
without end, so the stage's stream decides where an epoch ends); a streamed keep source (`context.keep_stream`)
gives just the texts a stage in memory needs (its first round(n * r / (1 - r)), then drawn as above). Replayed
text is trained whole; a chat example keeps its loss spans.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import Field

from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext

T = TypeVar("T")


class ReplayConfig(MethodConfig):
    name: str = "replay"
    ratio: float = Field(default=0.25, gt=0, lt=1, description="share of training examples that are replayed text")
    buffer_per_stage: int = Field(default=256, ge=0, description="examples of each finished stage kept for replay")


def replay_draw(pool: Sequence[T], new: int, ratio: float, seed: int) -> list[T]:
    """The examples to replay beside `new` fresh ones so that a share `ratio` of all is replayed:
    round(new * ratio / (1 - ratio)) of them, in the order of a seeded permutation of `pool`, cycling
    through it when it is shorter. Any kind of example: texts, or (input, target) pairs of a classifier.
    """
    order = random.Random(seed).sample(list(pool), len(pool))
    count = round(new * ratio / (1 - ratio))
    return [order[i % len(order)] for i in range(count)] if order else []


def _examples(dataset: Any) -> Any:
    """`text` and `loss_spans` (null: trained whole), the columns every mixed part shares."""
    import datasets

    columns = dataset.column_names or list(next(iter(dataset), {"text": ""}))
    if "loss_spans" not in columns:
        spans = datasets.List(datasets.List(datasets.Value("int64")))
        dataset = dataset.select_columns(["text"]).map(lambda row: {"loss_spans": None})
        return dataset.cast(datasets.Features({"text": datasets.Value("string"), "loss_spans": spans}))
    return dataset.select_columns(["text", "loss_spans"])


def mixed_with(dataset: Any, pool: Sequence[str] | Any, ratio: float, seed: int) -> Any:
    """`dataset` (a `text` column) with `replay_draw`'s texts from `pool` (texts, or a stream of them) added,
    shuffled with `seed`; a stream (`datasets.IterableDataset`) is interleaved instead (`mixed_stream`)."""
    import datasets

    if isinstance(dataset, datasets.IterableDataset):
        return mixed_stream(dataset, [pool], ratio, seed)
    if isinstance(pool, datasets.IterableDataset):  # draw only what this stage needs from the stream
        pool = [row["text"] for row in pool.take(round(len(dataset) * ratio / (1 - ratio)))]
    replayed = replay_draw(pool, len(dataset), ratio, seed)
    mixed = datasets.concatenate_datasets(
        [_examples(dataset), _examples(datasets.Dataset.from_dict({"text": replayed}))]
    )
    return mixed.shuffle(seed=seed)


def mixed_stream(stream: Any, pools: list[Sequence[str] | Any], ratio: float, seed: int) -> Any:
    """`stream` interleaved with replayed text: each example is replayed with probability `ratio`, drawn from
    the `pools` (lists of texts, or streams) in equal shares; each pool repeats without end, shuffled."""
    import datasets

    parts = [_examples(stream)]
    for pool in pools:
        if not isinstance(pool, datasets.IterableDataset):
            pool = datasets.Dataset.from_dict({"text": list(pool)}).to_iterable_dataset().shuffle(seed=seed)
        parts.append(_examples(pool).repeat(None))
    shares = [1 - ratio] + [ratio / len(pools)] * len(pools)
    return datasets.interleave_datasets(parts, probabilities=shares, seed=seed, stopping_strategy="first_exhausted")


@METHODS.register("replay")
class Replay(Method):
    config_class = ReplayConfig
    config: ReplayConfig

    def __init__(self, config: ReplayConfig) -> None:
        super().__init__(config)
        self.buffer: list[str] = []  # earlier stages' examples, carried across stages
        self._current: list[str] = []

    def training_data(self, dataset: Any, context: TrainContext) -> Any:
        import datasets

        pool = list(context.keep_texts) + self.buffer
        if not pool:
            raise ForgetlessError(
                "replay has no text to replay: the run's keep data is empty",
                "set `keep` in the config (general text to keep), or drop the replay method",
            )
        seed, ratio = context.seed + context.stage, self.config.ratio
        if isinstance(dataset, datasets.IterableDataset):
            # A stream's buffer is its first (shuffled) examples: a sample of all of it would read it all.
            self._current = [row["text"] for row in dataset.take(self.config.buffer_per_stage)]
            streamed = context.keep_stream is not None
            pools = [context.keep_stream if streamed else context.keep_texts] if streamed or context.keep_texts else []
            return mixed_stream(dataset, pools + ([self.buffer] if self.buffer else []), ratio, seed)
        self._current = list(dataset["text"])
        if context.keep_stream is not None:
            needed = round(len(dataset) * ratio / (1 - ratio))
            pool = [row["text"] for row in context.keep_stream.take(needed)] + self.buffer
        return mixed_with(dataset, pool, ratio, seed)

    def end_stage(self, model: Any, context: TrainContext) -> None:
        rng = random.Random(context.seed + 1000 + context.stage)
        keep = min(self.config.buffer_per_stage, len(self._current))
        self.buffer.extend(rng.sample(self._current, keep))
