"""The top of every report: one verdict line and a few cards that say what was gained, what was forgotten,
and the result's budget status: within (green), inconclusive (amber: not shown within) or over (red)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from forgetless.evaluation.results import guard_status, point_status
from forgetless.report.html import parts
from forgetless.report.plots import primary_comparisons
from forgetless.report.units import ACCURACY_METRICS, PERPLEXITY_METRICS, fmt_value, unit_suffix


def _card(label: str, value: str, detail: str = "", tone: str = "") -> dict[str, str]:
    return {"label": label, "value": value, "detail": detail, "tone": tone}


def _target_text(c: dict[str, Any]) -> tuple[str, str]:
    """('-72.6%', 'stage_sst2 perplexity 198.19 -> 54.25, lower is better') for a target comparison."""
    before, after = fmt_value(c["metric"], c["before"]), fmt_value(c["metric"], c["after"])
    better = "higher" if c["higher_is_better"] else "lower"
    detail = f"{c['probe']}: {c['metric']} {before} \u2192 {after} ({better} is better)"
    if c["metric"] in PERPLEXITY_METRICS and c.get("relative") is not None:
        return f"{c['relative']:+.1%}", detail
    if c["metric"] in ACCURACY_METRICS:
        return f"{c['delta'] * 100:+.1f} pt", detail
    return f"{c['delta']:+.4f}", detail


def audit_cards(audit: dict[str, Any]) -> list[dict[str, str]]:
    """Gained (the target's change) and Forgotten (general probes past their noise band)."""
    primary = primary_comparisons(audit["comparisons"])
    targets = [c for c in primary if c["role"] == "target"]
    cards = []
    if targets:
        value, detail = _target_text(targets[-1])  # the last stage's data in a run: what this fine-tune was for
        others = "; ".join(f"{c['probe']} {_target_text(c)[0]}" for c in targets[:-1])
        tone = {"improved": "good", "forgot": "bad"}.get(targets[-1]["verdict"], "")
        cards.append(_card("Gained (target)", value, detail + (f"; also {others}" if others else ""), tone))
    else:
        cards.append(_card("Gained (target)", "not measured", "no target probe: pass --target held-out text"))
    verdicts = probe_verdicts(audit)
    general = [c for c in primary if c["role"] == "general" and verdicts[c["probe"]] != "info"]
    forgot = [c for c in general if verdicts[c["probe"]] == "forgot"]
    detail = "; ".join(f"{c['probe']} {_forgot_text(audit, c)}" for c in forgot) or "all kept within noise or improved"
    cards.append(
        _card("Forgotten (beyond noise)", f"{len(forgot)} of {len(general)}", detail, "bad" if forgot else "good")
    )
    return cards


def probe_verdicts(audit: dict[str, Any]) -> dict[str, str]:
    """{probe: verdict} as the audit's summary decided it (a generation probe forgets when any of its measures
    does: evaluation.audit.forgotten); each primary comparison's own verdict for documents without one."""
    primary = {c["probe"]: c["verdict"] for c in primary_comparisons(audit["comparisons"])}
    return {**primary, **{k: v for k, v in audit.get("summary", {}).get("verdicts", {}).items() if k in primary}}


def _forgot_text(audit: dict[str, Any], primary: dict[str, Any]) -> str:
    """The primary metric's change when it forgot, else the measures that did (a generation probe's leak)."""
    if primary["verdict"] == "forgot":
        return fmt_change_short(primary)
    lost = [c for c in audit["comparisons"] if c["probe"] == primary["probe"] and c["verdict"] == "forgot"]
    return ", ".join(fmt_change_short(c) for c in lost) or fmt_change_short(primary)


def fmt_change_short(c: dict[str, Any]) -> str:
    if c["metric"] in PERPLEXITY_METRICS and c.get("relative") is not None:
        return f"{c['metric']} {c['relative']:+.1%}"
    if c["metric"] in ACCURACY_METRICS or c["metric"] == "leak":  # leak: a share of generations, in points too
        return f"{c['metric']} {c['delta'] * 100:+.1f} pt"
    return f"{c['metric']} {c['delta']:+.4f}"


def guard_text(guard: dict[str, Any]) -> str:
    """What the guard did during training, in words; empty when it did nothing."""
    stopped = guard.get("stopped")
    if not stopped:
        return ""
    where = f" in stage {stopped['stage']}" if stopped.get("stage") else ""
    if stopped["action"] == "rollback":
        restored = stopped.get("restored_step")
        if restored == 0:
            to = " to the base weights (step 0): the returned model is the base model (no target gain)"
        elif restored is not None:
            to = f" to the weights of step {restored}"
        else:
            to = " (no weights restored)"
        why = f"; {stopped['restored_why']}" if stopped.get("restored_why") and restored else ""
        return f"the guard rolled back at step {stopped['step']}{where}{to} ({stopped['why']}{why})"
    return f"the guard stopped the run at step {stopped['step']}{where} ({stopped['why']})"


STATUS_VALUE = {"within": "within budget", "over": "OVER budget", "inconclusive": "inconclusive"}
STATUS_VALUE["noise"] = STATUS_VALUE["inconclusive"]  # documents before 0.4


def budget_card(
    budget: str, status: str | None, action: str = "", checks: list[dict[str, Any]] | None = None
) -> dict[str, str]:
    """The budget's card: its status in its colour (report.status); inconclusive names the undecided probes."""
    if not budget:
        return _card("Forgetting budget", "none set", "set a budget (e.g. 2pt,5%) to bound forgetting")
    detail = f"budget {budget}" + (f"; {action}" if action else "")
    if status in ("inconclusive", "noise"):
        detail += f"; not over beyond doubt, not shown within either: {', '.join(_unclear(checks))}"
    value = STATUS_VALUE.get(status or "", "not checked")
    return _card("Forgetting budget", value, detail, status or "")


def budget_text(budget: str, status: str | None, checks: list[dict[str, Any]] | None = None) -> str:
    """The budget in words: "within budget" only when the status is within (never while a check is undecided)."""
    if status == "over":
        return f"OVER budget {budget}"
    if status == "within":
        return f"within budget {budget}"
    if status is None:
        return f"budget {budget}: no budgeted probe checked"
    unclear = ", ".join(_unclear(checks))
    return f"not over budget {budget} beyond doubt, not shown within it either ({unclear} inconclusive)"


def _unclear(checks: list[dict[str, Any]] | None) -> list[str]:
    return list(dict.fromkeys(c["probe"] for c in checks or [] if c["status"] not in ("within", "over")))


def eval_verdict(result: dict[str, Any]) -> Markup:
    cards, parts_ = [], []
    for p in result["probes"]:
        m = p["metrics"].get(p["primary"])
        if m is None:
            parts_.append(f"{p['name']}: {p['n_items']} generations")
            continue
        value = fmt_value(p["primary"], m["value"])
        bounds = (m.get("low"), m.get("high"))
        interval = (
            f"[{fmt_value(p['primary'], bounds[0])}, {fmt_value(p['primary'], bounds[1])}]"
            if None not in bounds
            else ""
        )
        parts_.append(f"{p['name']} {p['primary']} {value}")
        better = "higher" if m["higher_is_better"] else "lower"
        detail = f"{p['primary']}, {better} is better" + (f"; 95% interval {interval}" if interval else "")
        cards.append(_card(p["name"], value, f"{detail}; {p['n_items']} items"))
    line = f"{result['model']['spec']} on suite {result['suite']['name']}: " + "; ".join(parts_)
    return parts().verdict(line, "", cards[:8])


def audit_verdict(audit: dict[str, Any]) -> Markup:
    general = [c["probe"] for c in primary_comparisons(audit["comparisons"]) if c["role"] == "general"]
    forgot = any(probe_verdicts(audit)[name] == "forgot" for name in general)
    guard = audit.get("guard")  # an audit against a budget: the budget's status decides the colour
    if not guard:
        return parts().verdict(audit["summary"]["headline"], "bad" if forgot else "good", audit_cards(audit))
    status = guard_status(guard)  # documents before `status`: from their checks
    line = audit["summary"]["headline"] + "; " + budget_text(guard["budget"], status, guard["final"])
    cards = [*audit_cards(audit), budget_card(guard["budget"], status, checks=guard["final"])]
    return parts().verdict(line, status or "", cards)


def run_verdict(result: dict[str, Any]) -> Markup:
    guard, final = result["guard"], result["final"]
    action = guard_text(guard)
    status = guard_status(guard)  # results.json written before `status`: from its final checks
    line = final["summary"]["headline"]
    if guard["budget"]:
        line += "; " + budget_text(guard["budget"], status, guard["final"])
    if action:
        line += f"; {action}"
    cards = [*audit_cards(final), budget_card(guard["budget"], status, action, guard["final"])]
    forgot = any(c["tone"] == "bad" for c in cards[1:2])
    tone = (status or "") if guard["budget"] else "bad" if forgot else "good"
    return parts().verdict(line, tone, cards)


def repair_verdict(result: dict[str, Any]) -> Markup:
    chosen = next((p for p in result["curve"] if p["alpha"] == result["chosen_alpha"]), None)
    status = result.get("status") or (point_status(chosen) if chosen else None)  # repair.json before `status`
    line = f"{result['summary']}; the repaired model: {result['audit']['summary']['headline']}"
    rejected = result.get("next_alpha", result.get("next_over_alpha"))
    rejected_point = next((p for p in result["curve"] if p["alpha"] == rejected), None)
    rejected_status = point_status(rejected_point) if rejected_point else None
    alpha = _card(
        "Chosen alpha",
        f"{result['chosen_alpha']:g}",
        "1 = the fine-tune, 0 = the base"
        + (f"; \u03b1 {rejected:g} is {rejected_status}" if rejected is not None and rejected_status else "")
        + (f"; chosen by {result['rule']}" if result.get("rule") else ""),
    )
    checks = chosen["checks"] if chosen else None
    cards = [alpha, *audit_cards(result["audit"]), budget_card(result["budget"], status, checks=checks)]
    return parts().verdict(line, status or "", cards)


def check_cell(check: dict[str, Any]) -> Markup:
    """A budget check as a pill and its numbers: 'within  rise 6.8% / limit 10%'."""
    word = "rise" if check["unit"] in ("percent", "kl") else "drop"
    suffix = unit_suffix(check["unit"])
    digits = 3 if check["unit"] in ("nats", "kl") else 1
    text = f" {word} {check['change']:+.{digits}f}{suffix} / limit {check['limit']:g}{suffix}"
    return parts().pill(check["status"], check["status"]) + Markup("<span class='note'>{}</span>").format(text)
