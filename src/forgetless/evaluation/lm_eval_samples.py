"""Read the per-item samples that `lm_eval --log_samples --output_path DIR` wrote, without lm_eval.

lm-eval 0.4.x (`loggers/evaluation_tracker.py`) writes, for one run, into DIR/<model name sanitized>/
(or into DIR's parent when `--output_path` ends in `.json`):

- `results_<date>.json`: the aggregates, and per task its config (`configs[task].output_type`) and
  `higher_is_better[task][metric]`; plus the model (`model_name`, `config.model_args`);
- `samples_<task>_<date>.jsonl`: one line per document and filter, with `doc_id`, `doc`, `target`
  (str), `arguments` ({"gen_args_i": {"arg_j": ...}}: the requests, context then continuation),
  `resps` / `filtered_resps` (every number turned to a string: `["-17.9", "False"]` per choice),
  `filter`, `metrics` (the names, in the task's order), `doc_hash`, `prompt_hash`, `target_hash`,
  and each metric's per-document value (`acc: 1.0`; rolling: `word_perplexity: [loglikelihood, words]`).

`<date>` is an ISO time with `:` replaced by `-`, so the latest run of a task sorts last. Items of two
runs are paired by `doc_id` and must be the same documents with the same prompts: `match_docs` refuses
anything else, naming the task and the first document that differs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError

_SAMPLES = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)\.jsonl$")
_REQUIRED = ("doc_id", "arguments", "filtered_resps", "filter", "metrics")
# What makes two logged samples of one doc_id the same item: the document, the target and every
# request's strings (few-shot examples and chat templates live in the contexts).
IDENTITY = ("doc_hash", "prompt_hash", "target_hash", "arguments")


@dataclass
class TaskSamples:
    """One task's samples under one filter, by doc_id, with what the results file says of the task."""

    name: str  # the probe's name: the task, or `task.filter` when the task logged several filters
    task: str
    filter: str
    output_type: str  # multiple_choice | loglikelihood | loglikelihood_rolling | generate_until
    docs: dict[int, dict[str, Any]]
    higher_is_better: dict[str, bool]
    path: Path
    scored: str = ""  # for reports: "lm-eval arc_easy test, 300 of 2376"


@dataclass
class SamplesRun:
    """Every task of one lm-eval run folder, and what its results file says of the model."""

    folder: Path
    tasks: dict[str, TaskSamples]
    model: dict[str, Any]
    files: list[Path]
    notes: list[str] = field(default_factory=list)


def read_run(folder: str | Path, side: str) -> SamplesRun:
    """The samples in `folder` (an lm-eval `--output_path`, or the model subfolder inside it)."""
    where, files, notes = _sample_files(Path(folder), side)
    tasks: dict[str, TaskSamples] = {}
    for task, path, date in files:
        results = _results(where, date)
        by_filter = _read_samples(path)
        for filter_name, docs in by_filter.items():
            name = task if len(by_filter) == 1 else f"{task}.{filter_name}"
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)  # budget names: `[A-Za-z0-9_.-]+`
            output_type = results.get("configs", {}).get(task, {}).get("output_type") or _infer_type(docs)
            better = results.get("higher_is_better", {}).get(task, {})
            scored = _scored(task, filter_name, len(docs), results)
            tasks[name] = TaskSamples(name, task, filter_name, output_type, docs, dict(better), path, scored)
    newest = _results(where, max(date for _, _, date in files))
    return SamplesRun(where, tasks, _model(newest, where), [p for _, p, _ in files], notes)


def _sample_files(folder: Path, side: str) -> tuple[Path, list[tuple[str, Path, str]], list[str]]:
    """(the folder holding the samples, [(task, file, date)] of each task's latest run, notes)."""
    if not folder.exists():
        raise ForgetlessError(f"{side} '{folder}' does not exist", "pass the folder given to lm_eval --output_path")
    if folder.is_file():  # `--output_path results.json` puts the samples beside it
        folder = folder.parent
    candidates = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    found = [d for d in candidates if any(_SAMPLES.match(p.name) for p in d.iterdir() if p.is_file())]
    if not found:
        raise ForgetlessError(
            f"{side} '{folder}' holds no lm-eval samples (samples_<task>_<date>.jsonl), nor do its subfolders",
            "run lm_eval with --log_samples --output_path FOLDER and pass that folder",
        )
    if found[0] != folder and len(found) > 1:
        names = ", ".join(d.name for d in found)
        raise ForgetlessError(
            f"{side} '{folder}' holds the samples of several models: {names}",
            f"pass one of them, e.g. '{found[0]}'",
        )
    where = found[0]
    latest: dict[str, tuple[str, Path]] = {}
    older: list[str] = []
    for path in sorted(p for p in where.iterdir() if p.is_file()):
        match = _SAMPLES.match(path.name)
        if match is None:
            continue
        task, date = match.group("task"), match.group("date")
        if task in latest:
            older.append(task)
        if task not in latest or date > latest[task][0]:
            latest[task] = (date, path)
    notes = [f"{side}: task {t} was run more than once in {where}; read its latest samples" for t in sorted(set(older))]
    return where, [(task, path, date) for task, (date, path) in sorted(latest.items())], notes


def _read_samples(path: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """{filter: {doc_id: sample}} of one samples file."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                sample = json.loads(line)
            except json.JSONDecodeError as error:
                raise ForgetlessError(
                    f"{path}, line {number}: not JSON ({error.msg})", "pass the files lm_eval wrote, unedited"
                ) from error
            missing = [key for key in _REQUIRED if key not in sample] if isinstance(sample, dict) else list(_REQUIRED)
            if missing:
                raise ForgetlessError(
                    f"{path}, line {number}: not an lm-eval sample (no {', '.join(missing)})",
                    "pass the samples lm_eval 0.4 writes with --log_samples",
                )
            docs = out.setdefault(str(sample["filter"]), {})
            doc_id = int(sample["doc_id"])
            if doc_id in docs:
                raise ForgetlessError(
                    f"{path}: doc {doc_id} appears twice under filter '{sample['filter']}'",
                    "pass the file of a single lm_eval run",
                )
            docs[doc_id] = sample
    if not out:
        raise ForgetlessError(f"{path} is empty", "pass the samples of a finished lm_eval run")
    return out


def _results(where: Path, date: str) -> dict[str, Any]:
    """The results file of the run that wrote samples at `date` (`results_<date>.json`), or {}."""
    for path in sorted(where.glob(f"*_{date}.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # without it, output types and directions are inferred from the samples
        if isinstance(data, dict) and "results" in data:
            return data
    return {}


def _scored(task: str, filter_name: str, n: int, results: dict[str, Any]) -> str:
    """What the task scored, as reports name it: 'lm-eval arc_easy test, 300 of 2376' (split and size when known)."""
    config = results.get("configs", {}).get(task, {})
    split = config.get("test_split") or config.get("validation_split")  # lm-eval scores test when it has one
    total = results.get("n-samples", {}).get(task, {}).get("original")
    text = f"lm-eval {task}" + (f" {split}" if split else "") + (f", {n} of {total}" if total else f", {n} docs")
    return text + (f" (filter {filter_name})" if filter_name != "none" else "")


def _infer_type(docs: dict[int, dict[str, Any]]) -> str:
    """The output type from the samples alone (no results file beside them)."""
    sample = next(iter(docs.values()))
    if {"word_perplexity", "byte_perplexity", "bits_per_byte"} & set(sample["metrics"]):
        return "loglikelihood_rolling"
    requests = list(sample["arguments"].values())
    if len(requests) > 1:
        return "multiple_choice"
    return "generate_until" if isinstance(requests[0].get("arg_1"), dict) else "loglikelihood"


def _model(results: dict[str, Any], where: Path) -> dict[str, Any]:
    """What the results file says of the scored model (its name, arguments, lm-eval version)."""
    config = results.get("config", {}) if results else {}
    args = str(config.get("model_args") or "")
    pretrained = re.search(r"(?:^|,)pretrained=([^,]+)", args)
    spec = results.get("model_name") or (pretrained.group(1) if pretrained else None) or str(where)
    out = {"spec": str(spec), "lm_eval_version": results.get("lm_eval_version"), "model_args": args or None}
    return {k: v for k, v in out.items() if v is not None}


def match_docs(base: TaskSamples, tuned: TaskSamples) -> list[int]:
    """The doc_ids both runs scored, in order, after checking they are the same items; else a clear error."""
    fix = (
        "audit two lm_eval runs of the same task on the same data: same task version, --limit, --samples, "
        "--num_fewshot, few-shot seed, system instruction and chat template"
    )
    if base.output_type != tuned.output_type:
        raise ForgetlessError(
            f"lm-eval task '{base.name}' is {base.output_type} in BASE and {tuned.output_type} in TUNED", fix
        )
    only = sorted(set(base.docs) ^ set(tuned.docs))
    if only:
        side = "BASE" if only[0] in base.docs else "TUNED"
        raise ForgetlessError(
            f"lm-eval task '{base.name}': BASE scored {len(base.docs)} docs and TUNED {len(tuned.docs)}; doc "
            f"{only[0]} is only in {side}",
            fix,
        )
    ids = sorted(base.docs)
    for doc_id in ids:
        a, b = base.docs[doc_id], tuned.docs[doc_id]
        for key in IDENTITY:
            if a.get(key) != b.get(key):
                what, old, new = _difference(key, a.get(key), b.get(key))
                raise ForgetlessError(
                    f"lm-eval task '{base.name}': doc {doc_id} is not the same item in the two runs "
                    f"({what} differs: {old} in BASE, {new} in TUNED)",
                    fix,
                )
    return ids


def _difference(key: str, a: Any, b: Any) -> tuple[str, str, str]:
    """What differs, shown where it differs: the first request string that does, from just before the change."""
    if key == "arguments" and isinstance(a, dict) and isinstance(b, dict):
        for request in sorted(set(a) | set(b)):
            left, right = a.get(request) or {}, b.get(request) or {}
            for arg in sorted(set(left) | set(right)):
                if left.get(arg) != right.get(arg):
                    return f"{request}.{arg}", *_around(left.get(arg), right.get(arg))
    return key, *_around(a, b)


def _around(a: Any, b: Any, width: int = 50) -> tuple[str, str]:
    texts = [x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in (a, b)]
    start = next((i for i, (x, y) in enumerate(zip(*texts, strict=False)) if x != y), min(map(len, texts)))
    start = max(0, start - 15)
    return tuple(("..." if start else "") + repr(t[start : start + width]) for t in texts)  # type: ignore[return-value]
