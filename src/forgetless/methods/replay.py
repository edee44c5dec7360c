"""Experience replay: mix text of what must be kept into the fine-tuning data at a fixed ratio.

The simplest strong baseline of continual learning (Chaudhry et al. 2019, "On Tiny Episodic
Memories in Continual Learning"; for LLMs, e.g. Scialom et al. 2022). With `ratio` r, a share r
of the training examples are replayed general text: len(train) * r / (1 - r) of them, drawn with a
fixed seed from `context.keep_texts` (repeating when there are fewer), then shuffled in. With
several stages, each stage's training data joins the buffer for the next stage.
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


def mixed_with(dataset: Any, pool: Sequence[str], ratio: float, seed: int) -> Any:
    """`dataset` (a `text` column) with `replay_draw`'s texts from `pool` added, shuffled with `seed`."""
    import datasets

    replayed = replay_draw(pool, len(dataset), ratio, seed)
    mixed = datasets.concatenate_datasets(
        [dataset.select_columns(["text"]), datasets.Dataset.from_dict({"text": replayed})]
    )
    return mixed.shuffle(seed=seed)


@METHODS.register("replay")
class Replay(Method):
    config_class = ReplayConfig
    config: ReplayConfig

    def __init__(self, config: ReplayConfig) -> None:
        super().__init__(config)
        self.buffer: list[str] = []  # earlier stages' examples, carried across stages
        self._current: list[str] = []

    def training_data(self, dataset: Any, context: TrainContext) -> Any:
        pool = list(context.keep_texts) + self.buffer
        if not pool:
            raise ForgetlessError(
                "replay has no text to replay: the run's keep data is empty",
                "set `keep` in the config (general text to keep), or drop the replay method",
            )
        self._current = list(dataset["text"])
        return mixed_with(dataset, pool, self.config.ratio, context.seed + context.stage)

    def end_stage(self, model: Any, context: TrainContext) -> None:
        rng = random.Random(context.seed + 1000 + context.stage)
        keep = min(self.config.buffer_per_stage, len(self._current))
        self.buffer.extend(rng.sample(self._current, keep))
