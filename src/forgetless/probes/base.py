"""What every probe shares: its typed config, its result, and the paired comparison of two results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forgetless.data.sources import Source, describe_sources, select_items
from forgetless.registry import Registry

PROBES: Registry[type[Probe]] = Registry("probe")


class ProbeConfig(BaseModel):
    """Fields every probe has. `role: target` marks the user's own task (what tuning should gain)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str
    role: Literal["general", "target"] = "general"
    description: str = ""
    source: list[Source] = Field(default_factory=list)
    limit: int | None = Field(default=None, gt=0)
    seed: int = 1234

    @field_validator("source", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> list[Source]:
        values = value if isinstance(value, list) else [value]
        return [Source.parse(v) for v in values]


@dataclass
class Metric:
    value: float
    higher_is_better: bool
    stderr: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass
class ProbeResult:
    """A probe's scores on one model. `items` keeps per-item data for paired comparisons."""

    name: str
    kind: str
    role: str
    primary: str
    metrics: dict[str, Metric]
    n_items: int
    seconds: float
    items: dict[str, list[Any]] = field(default_factory=dict)
    cache_key: str = ""
    items_key: str = ""  # hash of the exact scoring requests (tokens, settings), whatever the model
    scored: str = ""  # what was scored, for reports: "lm-eval arc_easy test, 300 of 2376"; "" if unsaid

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        metrics = {k: Metric(**v) for k, v in data["metrics"].items()}
        return cls(**{**data, "metrics": metrics})


@dataclass
class Comparison:
    """Before/after of one metric on the same items. `low`/`high` bound `delta` (after - before)."""

    probe: str
    role: str
    metric: str
    higher_is_better: bool
    before: float
    after: float
    delta: float
    relative: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n: int
    verdict: str  # improved | forgot | kept | changed | info
    note: str = ""
    # The paired test behind low/high/p_value (metrics.paired_tests, as a dict), so a budget can judge
    # the change against its limit at its own level; None when the interval came from a bootstrap.
    test: dict[str, Any] | None = None

    @classmethod
    def paired(cls, result: ProbeResult, metric: str, higher_is_better: bool, d: Any, note: str = "") -> Comparison:
        """From a metrics.PairedDelta: the verdict follows from its interval and the metric's direction."""
        return cls(
            result.name,
            result.role,
            metric,
            higher_is_better,
            d.before,
            d.after,
            d.delta,
            d.relative,
            d.low,
            d.high,
            d.p_value,
            d.n,
            verdict(d.low, d.high, higher_is_better),
            note,
            getattr(d, "test", None),
        )


def verdict(low: float | None, high: float | None, higher_is_better: bool) -> str:
    """'improved' or 'forgot' only when the whole interval of the delta lies on one side of zero."""
    if low is None or high is None:
        return "info"
    if low > 0:
        return "improved" if higher_is_better else "forgot"
    if high < 0:
        return "forgot" if higher_is_better else "improved"
    return "kept"


class Probe:
    """A probe kind: builds its items from a config, scores a model, compares two results.

    Subclasses set `config_class` and implement `prepare` (items and the content that keys the
    cache), `score` and `compare`.
    """

    config_class: type[ProbeConfig] = ProbeConfig

    def __init__(self, config: ProbeConfig, base_dir: Path | None = None) -> None:
        self.config = config
        self.base_dir = base_dir

    def prepare(self, tokenizer: Any) -> Any:
        raise NotImplementedError

    def sample(self, n: int, what: str = "") -> list[int]:
        """Indices of this probe's fixed sample of `n` items (its limit and seed); remembered for `scored`.
        `what` names items that do not come from `source` (canary's inline prompts)."""
        self._available = (n, what)
        return select_items(n, self.config.limit, self.config.seed)

    def scored(self, n: int) -> str:
        """What a result of `n` items scored, for reports: 'ai2_arc/ARC-Easy/validation, 200 of 570'; '' when
        the items were never sampled here (a result rebuilt without its data)."""
        available, what = getattr(self, "_available", (None, ""))
        if available is None:
            return ""
        return f"{what or describe_sources(self.config.source)}, {n} of {available}"

    def score(self, lm: Any, prepared: Any, options: ScoreOptions) -> ProbeResult:
        raise NotImplementedError

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        raise NotImplementedError

    # Parts of a probe: a sequential check (guard.sequential) scores a random part of the items first
    # and the rest only when the part leaves a verdict open. Kinds that implement both can be split.

    def subset(self, prepared: Any, indices: list[int]) -> Any | None:
        """`prepared` restricted to the items at `indices`, in that order; None: this kind scores whole."""
        return None

    def from_items(self, items: dict[str, list[Any]], seconds: float) -> ProbeResult:
        """The result of per-item data alone: merged parts of a check, or part of a saved result."""
        raise NotImplementedError(f"probe kind {self.config.kind!r} cannot be scored in parts")


def take_items(items: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
    """Per-item data at `indices` (every list in a result's `items` has one entry per item)."""
    return {key: [values[i] for i in indices] for key, values in items.items()}


@dataclass
class ScoreOptions:
    batch_tokens: int = 4096
    max_length: int | None = None
    progress: Any = None  # callable(advance: int) or None
