"""`forgetless compare`: several fine-tunes of one base on one frontier, target gain against retention.

Each input is a run folder (results.json), an audit (audit.json), a repair (repair.json) or a demo
folder (demo.json: one entry per method). Every entry is reduced to two numbers from its audit
against the base, both "higher is better":

- target gain: how much the target's perplexity fell, in % of the base's (the last target probe,
  i.e. the last stage's held-out data for a run);
- general retention: the mean over general probes of after/before for accuracies and before/after
  for perplexities, in % (100 = nothing lost).

With a budget (`--budget`, or the one all runs share), each entry also gets "budget used": the
worst budgeted probe's estimated change over its limit, in %, and its status (guard.budget: within
only when every budgeted probe is shown within, over when one is shown over, inconclusive otherwise;
a budget used under 100% can still be inconclusive). Each entry's checks are judged again from its
comparisons, so folders written before `status` are read the same way.
Entries must come from the same base model scored on the same probes; otherwise the comparison
is refused, naming what differs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.evaluation.results import budget_status
from forgetless.guard.budget import Budget
from forgetless.probes import Comparison

COMPARE_SCHEMA = "forgetless.compare/1"
STRENGTH_FIELDS = ("alpha", "lam", "ratio", "r", "temperature", "decay")


@dataclass
class Entry:
    label: str
    source: str
    audit: dict[str, Any] = field(repr=False)
    budget: str = ""
    target_gain: float | None = None
    retention: float | None = None
    budget_used: float | None = None
    status: str = ""  # within | inconclusive | over | "" without a budget (or no budgeted probe)
    pareto: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "audit"}


def load_entries(paths: list[Path]) -> list[Entry]:
    entries: list[Entry] = []
    for path in paths:
        entries.extend(_entries(Path(path)))
    if len(entries) < 2:
        raise ForgetlessError(f"compare needs at least two results, got {len(entries)}", "pass two or more run folders")
    labels = [e.label for e in entries]
    for e in entries:  # the same label twice (two runs of one method): tell them apart by folder
        if labels.count(e.label) > 1:
            e.label = f"{e.label} [{Path(e.source).parent.name if Path(e.source).is_file() else e.source}]"
    return entries


def _entries(path: Path) -> list[Entry]:
    folder, candidates = (path.parent, [path]) if path.is_file() else (path, [])
    if not candidates:
        candidates = [
            path / n for n in ("results.json", "audit.json", "repair.json", "demo.json") if (path / n).is_file()
        ]
    if not candidates:
        raise ForgetlessError(
            f"'{path}' holds no results.json, audit.json, repair.json or demo.json",
            "pass folders written by forgetless run, audit, repair or demo",
        )
    data = json.loads(candidates[0].read_text(encoding="utf-8"))
    schema = str(data.get("schema", ""))
    if schema.startswith("forgetless.run/"):
        return [Entry(_run_label(data, folder), str(folder), data["final"], data.get("guard", {}).get("budget", ""))]
    if schema.startswith("forgetless.audit/"):
        return [Entry(folder.name, str(folder), data, data.get("guard", {}).get("budget", ""))]
    if schema.startswith("forgetless.repair/"):
        return [Entry(f"repair alpha={data['chosen_alpha']:g}", str(folder), data["audit"], data.get("budget", ""))]
    if schema.startswith("forgetless.demo/"):
        return [Entry(name, f"{folder}/{name}", audit) for name, audit in data["methods"].items()]
    raise ForgetlessError(
        f"'{candidates[0]}' has schema '{schema}', which compare cannot read", "pass forgetless results"
    )


def _run_label(result: dict[str, Any], folder: Path) -> str:
    parts = []
    for method in result["config"]["methods"]:
        strengths = [f"{k}={method[k]:g}" for k in STRENGTH_FIELDS if isinstance(method.get(k), int | float)]
        parts.append(f"{method['name']}({', '.join(strengths)})" if strengths else method["name"])
    return " + ".join(parts) or folder.name


def check_comparable(entries: list[Entry]) -> None:
    """Same base model, same general probes (by configuration hash), same target kind and size."""
    problems = []
    first = entries[0]
    base = first.audit["base"]["model"]["fingerprint"]
    for e in entries[1:]:
        if e.audit["base"]["model"]["fingerprint"] != base:
            problems.append(f"'{e.label}' was tuned from another base model than '{first.label}'")
    reference = _probe_signature(first.audit)
    for e in entries[1:]:
        signature = _probe_signature(e.audit)
        for name in sorted(set(reference) | set(signature)):
            if name not in signature or name not in reference:
                where = first.label if name not in reference else e.label
                problems.append(f"probe '{name}' is missing from '{where}'")
            elif signature[name] != reference[name]:
                problems.append(f"probe '{name}' is configured differently in '{e.label}' and '{first.label}'")
    if problems:
        raise ForgetlessError(
            "these results cannot share a frontier:\n  - " + "\n  - ".join(problems),
            "compare fine-tunes of one base model scored with the same suite (and the same --limit)",
        )


def _probe_signature(audit: dict[str, Any]) -> dict[str, Any]:
    base = audit["base"]
    hashes = base.get("probe_configs", {})
    out = {}
    for probe in base["probes"]:
        if probe["role"] == "target":  # held-out files live in each run's own folder: compare their shape
            out["(target)"] = (probe["kind"], probe["n_items"])
        else:
            out[probe["name"]] = hashes.get(probe["name"], (probe["kind"], probe["n_items"]))
    return out


def score(entries: list[Entry], budget: Budget) -> None:
    """Fill in each entry's target gain, retention, budget use and status, and mark the Pareto front."""
    for e in entries:
        comparisons = [Comparison(**c) for c in e.audit["comparisons"]]
        primary: dict[str, Comparison] = {}
        for c in comparisons:
            primary.setdefault(c.probe, c)
        targets = [c for c in primary.values() if c.role == "target" and c.metric == "perplexity"]
        e.target_gain = -100 * targets[-1].relative if targets and targets[-1].relative is not None else None
        ratios = [
            (c.after / c.before if c.higher_is_better else c.before / c.after)
            for c in primary.values()
            if c.role == "general" and c.verdict != "info" and c.before and c.after
        ]
        e.retention = 100 * sum(ratios) / len(ratios) if ratios else None
        if budget:
            checks = budget.check(comparisons)
            e.budget_used = 100 * max((c.change / c.limit for c in checks), default=0.0)
            e.status = budget_status(checks) or ""  # within only when every budgeted probe is shown within
    for e in entries:
        e.pareto = e.target_gain is not None and not any(_dominates(o, e) for o in entries if o is not e)


def _dominates(a: Entry, b: Entry) -> bool:
    """a is at least as good as b on both axes of the frontier and better on one."""
    keep_a, keep_b = _kept(a), _kept(b)
    if a.target_gain is None or b.target_gain is None or keep_a is None or keep_b is None:
        return False
    return a.target_gain >= b.target_gain and keep_a >= keep_b and (a.target_gain > b.target_gain or keep_a > keep_b)


def _kept(e: Entry) -> float | None:
    # The frontier's x axis: with a budget, the share of it used (less is better), else retention.
    return -e.budget_used if e.budget_used is not None else e.retention


def compare(paths: list[Path], budget_spec: str | None = None) -> dict[str, Any]:
    """Load, check and score the entries; returns the JSON-ready comparison."""
    entries = load_entries(paths)
    check_comparable(entries)
    shared = {e.budget for e in entries}
    spec = budget_spec if budget_spec else (shared.pop() if len(shared) == 1 else "")
    budget = Budget.parse(spec)
    score(entries, budget)
    return {"schema": COMPARE_SCHEMA, "budget": str(budget), "entries": [e.to_dict() for e in entries]}
