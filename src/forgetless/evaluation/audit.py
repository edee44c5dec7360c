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


FAMILY_RATE = 0.05
VERDICT_RULE = (
    "a general probe is said to have forgotten when its change is beyond noise at a 5% family-wise error rate "
    "over the audit's general probes (Holm's step-down on each probe's two-sided p-value against no change; a "
    "generation probe's measures Bonferroni-combined); comparisons without a p-value keep their own 95% verdict"
)


def holm(p_values: dict[str, float], rate: float = FAMILY_RATE) -> set[str]:
    """The names Holm's step-down procedure rejects at family-wise error `rate` (Holm 1979, Scand. J.
    Statist. 6:65-70): sorted p_(1) <= ... <= p_(m), reject while p_(k) <= rate / (m - k + 1)."""
    rejected: set[str] = set()
    ordered = sorted(p_values.items(), key=lambda kv: kv[1])
    for k, (name, p) in enumerate(ordered):
        if p > rate / (len(ordered) - k):
            break
        rejected.add(name)
    return rejected


def _decisive(comparisons: list[Comparison], primary: dict[str, Comparison]) -> dict[str, list[Comparison]]:
    """{probe: the comparisons that decide whether it forgot}: its primary metric's, or every generation measure."""
    out: dict[str, list[Comparison]] = {name: [] for name in primary}
    for c in comparisons:
        if c is primary[c.probe] or c.metric in GENERATION_MEASURES:
            out[c.probe].append(c)
    return out


def _family_forgot(decisive: dict[str, list[Comparison]]) -> dict[str, list[Comparison]]:
    """Which of these probes forgot under the family-wise rate; probes whose forgetting comparisons carry no
    p-value keep their own 95% verdicts (there is nothing to adjust)."""
    p_values: dict[str, float] = {}
    for name, found in decisive.items():
        tested = [c for c in found if c.p_value is not None]
        forgot = [c for c in tested if c.verdict == "forgot"]
        if tested:  # Bonferroni over a probe's measures; only a change in the forgetting direction counts
            p_values[name] = min(1.0, len(tested) * min(c.p_value for c in forgot)) if forgot else 1.0  # type: ignore[type-var]
    rejected = holm(p_values)
    out: dict[str, list[Comparison]] = {}
    for name, found in decisive.items():
        if name in p_values:
            out[name] = (
                [c for c in found if c.verdict == "forgot" and c.p_value is not None] if name in rejected else []
            )
        else:
            out[name] = [c for c in found if c.verdict == "forgot"]
    return out


def forgotten(comparisons: list[Comparison]) -> dict[str, list[Comparison]]:
    """{probe: the comparisons that say it forgot}: its primary metric's, or any generation measure's.

    A generation probe forgets when any of its measures does: a kept primary measure while the generations end
    in the fine-tune's template (leak) or loop (repetition) is not "kept" (issue 15: the demo's generations
    collapsed into its review format under a headline that counted only primary metrics). A choice probe's
    gold_logprob does not decide it: that finer measure is named apart (see `summarize`). General probes are
    judged together at a 5% family-wise rate (`VERDICT_RULE`); a target keeps its own 95% verdict.
    """
    primary: dict[str, Comparison] = {}
    for c in comparisons:
        primary.setdefault(c.probe, c)
    decisive = _decisive(comparisons, primary)
    general = {name: found for name, found in decisive.items() if primary[name].role == "general"}
    out = _family_forgot(general)
    for name, found in decisive.items():
        if name not in general:
            out[name] = [c for c in found if c.verdict == "forgot"]
    return {name: out[name] for name in primary}


def summarize(comparisons: list[Comparison]) -> dict[str, Any]:
    """The verdict per probe (its primary comparison, or a generation measure that forgot), and the lines
    people read first."""
    primary: dict[str, Comparison] = {}
    for c in comparisons:
        primary.setdefault(c.probe, c)
    lost = forgotten(comparisons)
    # A primary comparison beyond noise at 95% alone, not under the family-wise rate, is not a forgotten probe.
    verdicts = {
        name: "forgot" if lost[name] else "kept" if c.verdict == "forgot" else c.verdict for name, c in primary.items()
    }
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
    finer_family = {c.probe: [c] for c in comparisons if c.metric == "gold_logprob" and c.role == "general"}
    finer_forgot = _family_forgot(finer_family)  # the same family-wise rule over the probes' log-probabilities
    finer = [name for name, found in finer_forgot.items() if found and not lost[name]]
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
