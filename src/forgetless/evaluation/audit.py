"""Compare two evaluations item by item and build the audit document: per probe, what was forgotten."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from forgetless import __version__
from forgetless.errors import ForgetlessError
from forgetless.evaluation.results import AUDIT_SCHEMA
from forgetless.probes import Comparison, Probe, ProbeResult
from forgetless.probes.generation import MEASURES as GENERATION_MEASURES


def compare_evals(probes: list[Probe], before: dict[str, Any], after: dict[str, Any]) -> list[Comparison]:
    """Paired comparison of two eval results of the same probes; primary metric first per probe."""
    old = {p["name"]: ProbeResult.from_dict(_strip(p)) for p in before["probes"]}
    new = {p["name"]: ProbeResult.from_dict(_strip(p)) for p in after["probes"]}
    out: list[Comparison] = []
    for probe in probes:
        name = probe.config.name
        if name not in old or name not in new:
            raise ForgetlessError(
                f"probe '{name}' is missing from one of the two results", "score both with the same suite"
            )
        if old[name].n_items != new[name].n_items:
            raise ForgetlessError(
                f"probe '{name}' has {old[name].n_items} items before and {new[name].n_items} after",
                "score both models on the same items (same suite, same --limit)",
            )
        out.extend(probe.compare(old[name], new[name]))
    return out


def _strip(probe_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in probe_dict.items() if k != "cached"}


def forgotten(comparisons: list[Comparison]) -> dict[str, list[Comparison]]:
    """{probe: the comparisons that say it forgot}: its primary metric's, or any generation measure's.

    A generation probe forgets when any of its measures does: a kept primary measure while the generations end
    in the fine-tune's template (leak) or loop (repetition) is not "kept" (issue 15: the demo's generations
    collapsed into its review format under a headline that counted only primary metrics). A choice probe's
    gold_logprob does not decide it: that finer measure is named apart (see `summarize`).
    """
    primary: dict[str, Comparison] = {}
    for c in comparisons:
        primary.setdefault(c.probe, c)
    out: dict[str, list[Comparison]] = {name: [] for name in primary}
    for c in comparisons:
        if c.verdict == "forgot" and (c is primary[c.probe] or c.metric in GENERATION_MEASURES):
            out[c.probe].append(c)
    return out


def summarize(comparisons: list[Comparison]) -> dict[str, Any]:
    """The verdict per probe (its primary comparison, or a generation measure that forgot), and the lines
    people read first."""
    primary: dict[str, Comparison] = {}
    for c in comparisons:
        primary.setdefault(c.probe, c)
    lost = forgotten(comparisons)
    verdicts = {name: "forgot" if lost[name] else c.verdict for name, c in primary.items()}
    by_verdict: dict[str, list[str]] = {"forgot": [], "kept": [], "improved": [], "info": []}
    for name, v in verdicts.items():
        by_verdict.setdefault(v, []).append(name)
    general = [c for c in primary.values() if c.role == "general" and verdicts[c.probe] != "info"]
    kept = sum(verdicts[c.probe] != "forgot" for c in general)
    parts = [f"{kept} of {len(general)} general probes kept within noise or improved"]
    for c in general:
        if lost[c.probe]:
            parts.append(f"{c.probe} forgot: {', '.join(describe_change(m) for m in lost[c.probe])}")
    # Which measure found the change: a gold answer's probability falls before the answer flips.
    finer = [
        c.probe
        for c in comparisons
        if c.metric == "gold_logprob"
        and c.role == "general"
        and c.verdict == "forgot"
        and primary[c.probe].verdict != "forgot"
    ]
    if finer:
        parts.append(f"gold-answer log-probability fell beyond noise where accuracy did not: {', '.join(finer)}")
    for c in primary.values():
        if c.role == "target":
            parts.insert(0, f"target {c.probe}: {describe_change(c)} ({c.verdict})")
    return {
        "verdicts": verdicts,
        "by_verdict": by_verdict,
        "headline": "; ".join(parts),
    }


def describe_change(c: Comparison) -> str:
    if c.metric.endswith("perplexity") and c.relative is not None:  # lm-eval's word_ and byte_perplexity too
        return f"{c.metric} {c.before:.2f} -> {c.after:.2f} ({c.relative:+.1%})"
    scale = 100 if c.metric.startswith("acc") or c.metric in ("expect_rate", "exact_match", "leak") else 1
    d = 1 if scale == 100 else 3  # points to a tenth; other scores (a Spearman rho) to three decimals
    interval = f" [{c.low * scale:+.{d}f}, {c.high * scale:+.{d}f}]" if c.low is not None else ""
    unit = " points" if scale == 100 else ""
    return f"{c.metric} {c.before * scale:.{d}f} -> {c.after * scale:.{d}f} ({c.delta * scale:+.{d}f}{unit}{interval})"


def build_audit(probes: list[Probe], base_eval: dict[str, Any], tuned_eval: dict[str, Any]) -> dict[str, Any]:
    """The audit document: both evals, every paired comparison, and the summary."""
    return audit_document(compare_evals(probes, base_eval, tuned_eval), base_eval, tuned_eval)


def audit_document(
    comparisons: list[Comparison], base_eval: dict[str, Any], tuned_eval: dict[str, Any]
) -> dict[str, Any]:
    """The audit document of comparisons made already (by probes, or from lm-eval's samples)."""
    return {
        "schema": AUDIT_SCHEMA,
        "forgetless_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "suite": base_eval["suite"],
        "base": base_eval,
        "tuned": tuned_eval,
        "comparisons": [dataclasses.asdict(c) for c in comparisons],
        "summary": summarize(comparisons),
    }
