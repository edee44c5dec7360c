"""`forgetless audit --lm-eval-samples BASE_DIR TUNED_DIR`: the paired audit of two lm-eval runs, no model loaded.

People who evaluate with lm-evaluation-harness already have, per document, what each model scored
(`lm_eval --log_samples`). For every task logged in both folders, the documents are paired by doc_id
(and checked to be the same items), and the audit is what `forgetless audit` builds from its own
probes: per-item paired deltas with intervals and verdicts, the gold answer's log-probability for
multiple choice, per-document perplexity change for rolling log-likelihood tasks, a budget judged at a
false-alarm rate, and audit.json / audit.md / report.html from `Audit.write`. lm_eval itself is not
imported: its samples are plain JSONL.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forgetless import __version__
from forgetless.errors import ConfigError, ForgetlessError
from forgetless.evaluation.audit import audit_document
from forgetless.evaluation.lm_eval_samples import SamplesRun, match_docs, read_run
from forgetless.evaluation.lm_eval_scores import comparable_metrics, compare_results, task_result
from forgetless.evaluation.results import EVAL_SCHEMA, Audit, budget_status
from forgetless.guard.budget import Budget
from forgetless.probes import Comparison, ProbeResult

SUITE = "lm-eval-samples"


def audit_lm_eval_samples(
    base_dir: str | Path, tuned_dir: str | Path, *, budget: str | None = None, false_alarm: float = 0.05
) -> Audit:
    """What did the tuned model forget, from two `lm_eval --log_samples --output_path` folders.

    Args:
        base_dir: lm-eval's output folder of the base model (or the model-named subfolder in it).
        tuned_dir: the same for the fine-tuned model, same tasks and documents.
        budget: forgetting budget, e.g. "2pt,5%,arc_easy:3pt": probes are the task names (`task.filter`
            for a task logged under several filters); accuracies in points, perplexities in percent,
            multiple-choice gold answer log-probability in nats.
        false_alarm: the chance of calling any task over its limit when every one is within it.

    Returns:
        The `Audit`, with `extra["lm_eval"]`: the folders, the files read and notes on anything left out.

    Raises:
        ForgetlessError: a folder without samples, tasks that share no document, or documents that
            differ between the runs (naming the task and the first differing doc); ConfigError: every
            problem of the budget at once.
    """
    if not 0 < false_alarm < 1:
        raise ForgetlessError(f"false_alarm={false_alarm!r} must be between 0 and 1", "use e.g. 0.05")
    limits = Budget.parse(budget) if budget is not None else None
    if limits is not None and not limits:
        raise ForgetlessError(f"budget '{budget}' has no limit", "write e.g. '2pt,5%', or leave the budget out")
    base, tuned = read_run(base_dir, "BASE"), read_run(tuned_dir, "TUNED")
    notes = [*base.notes, *tuned.notes]
    for run, other, side in ((base, tuned, "BASE"), (tuned, base, "TUNED")):
        notes += [
            f"task {name} is only in {side} ({run.folder}); not audited"
            for name in run.tasks
            if name not in other.tasks
        ]
    results: list[tuple[ProbeResult, ProbeResult]] = []
    comparisons: list[Comparison] = []
    for name in (n for n in base.tasks if n in tuned.tasks):
        ids = match_docs(base.tasks[name], tuned.tasks[name])
        metrics, left_out = comparable_metrics(base.tasks[name], tuned.tasks[name], ids)
        notes += left_out
        if not metrics:
            notes.append(f"{name}: no metric that can be paired per document; not audited")
            continue
        before, after = task_result(base.tasks[name], ids, metrics), task_result(tuned.tasks[name], ids, metrics)
        found, more = compare_results(before, after)
        results.append((before, after))
        comparisons += found
        notes += more
    if not results:
        raise ForgetlessError(
            f"BASE '{base.folder}' and TUNED '{tuned.folder}' share no task that can be audited",
            "run lm_eval on both models with the same --tasks and --log_samples",
        )
    if limits is not None:
        problems = limits.problems({before.name: before.primary for before, _ in results})
        if problems:
            raise ConfigError(f"budget '{budget}'", problems)
    document = audit_document(comparisons, _eval(base, [b for b, _ in results]), _eval(tuned, [a for _, a in results]))
    if limits is not None:
        checks = limits.check(comparisons, false_alarm)
        document["guard"] = {
            "budget": str(limits),
            "false_alarm": false_alarm,
            "final": [c.to_dict() for c in checks],
            "status": budget_status(checks),  # within only when every check is shown within
        }
    document["lm_eval"] = {
        "base": str(base.folder),
        "tuned": str(tuned.folder),
        "files": {"base": [str(p) for p in base.files], "tuned": [str(p) for p in tuned.files]},
        "notes": notes,
    }
    return Audit.from_json(document)


def _eval(run: SamplesRun, results: list[ProbeResult]) -> dict[str, Any]:
    """A `forgetless.eval/1` document of one lm-eval run: the model as its results file names it."""
    digest = hashlib.blake2b(digest_size=16)  # what the model answered: equal fingerprints, equal scores
    for result in results:
        task = run.tasks[result.name]
        answers = [task.docs[doc_id]["filtered_resps"] for doc_id in result.items["doc_id"]]
        digest.update(json.dumps([result.name, answers]).encode())
    model = {"spec": run.model["spec"], "source": "lm-eval", "fingerprint": digest.hexdigest()}
    details = {k: v for k, v in run.model.items() if k != "spec"}
    return {
        "schema": EVAL_SCHEMA,
        "forgetless_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {**model, **details, "samples": str(run.folder)},
        "suite": {"name": SUITE, "path": str(run.folder)},
        "probes": [{**r.to_dict(), "cached": False} for r in results],
        "probe_configs": {r.name: r.items_key for r in results},
        "seconds": 0.0,
    }
