"""Repair a fine-tune that forgot: the largest interpolation with its base that meets a forgetting budget.

WiSE-FT (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models") mixes the weights,
theta(alpha) = theta_base + alpha * (theta_tuned - theta_base); for a LoRA adapter every B is
multiplied by alpha. The search scores alpha = 0 and 1, then bisects [0, 1] for the largest alpha
the rule `accept` takes, to a resolution of 1 / 2**steps. Each alpha scored gets a `status`
(guard.budget): `over` when a probe's loss is over its limit beyond doubt, `within` when every
budgeted probe is shown within its limit, `inconclusive` otherwise. `accept="within"` (default) takes
only alphas shown within, so the repaired model is within budget or is the base (alpha 0);
`accept="not_over"` takes any alpha not shown over, which an inconclusive alpha is (the older rule).
The search looks at most steps + 1 times (alpha 1 and each midpoint), so each look's over is
judged at false_alarm / (steps + 1) and the chance of calling a fine-tune over that is within budget
stays under false_alarm. It assumes forgetting grows with alpha (an accepted alpha above a rejected
one goes unseen). Every point scored is recorded with each budgeted probe's change and the target's
change and gain (target_gain: the relative perplexity decrease against the base, positive = better).
Results are cached by weights, so a second run scores nothing again.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forgetless import __version__
from forgetless.cache import ResultCache
from forgetless.errors import ConfigError, ForgetlessError
from forgetless.evaluation.audit import build_audit, compare_evals
from forgetless.evaluation.evaluate import evaluate
from forgetless.evaluation.results import budget_status
from forgetless.guard.budget import Budget, probe_metrics
from forgetless.models import LoadedModel, load_model
from forgetless.models.interpolate import (
    check_linear_adapter,
    compatibility_problems,
    full_weights,
    interpolate_,
    lora_b,
    scale_lora_,
)
from forgetless.models.load_options import quantized_bits, quantized_checkpoint
from forgetless.paths import write_json_atomic, write_text_atomic
from forgetless.probes import Probe, ScoreOptions
from forgetless.suites import Suite

REPAIR_SCHEMA = "forgetless.repair/1"
# The rules that choose alpha: the largest alpha whose status is within, or whose status is not over.
ACCEPT = {
    "within": "the largest alpha shown within budget (accept: within)",
    "not_over": "the largest alpha not shown over budget (accept: not-over; an inconclusive alpha counts, so "
    "the repaired model may not be within budget)",
}


def budget_problems(budget: Budget, probes: list[Probe]) -> list[str]:
    """What keeps `budget` from bounding these probes; empty when it can be used."""
    if not budget:
        return ["no forgetting budget given; give --budget, e.g. '2pt,5%' (accuracy points, perplexity percent)"]
    metrics = probe_metrics(probes)
    problems = budget.problems(metrics, targets=[p.config.name for p in probes if p.config.role == "target"])
    if not problems and not any(budget.limit_for(name, metric) for name, metric in metrics.items()):
        listing = ", ".join(f"{name} ({metric})" for name, metric in metrics.items())
        problems.append(
            f"budget '{budget}' bounds none of the probes ({listing}); pt bounds accuracies, % perplexities"
        )
    return problems


def bisect(within: Callable[[float], bool], steps: int) -> tuple[float, float | None]:
    """The largest alpha in [0, 1] that `within` accepts, to 1 / 2**steps, and the smallest alpha above it
    that it rejected.

    alpha = 0 is taken as accepted (the base against itself loses nothing). Returns (1.0, None) when 1 is.
    """
    if within(1.0):
        return 1.0, None
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if within(middle) else (low, middle)
    return low, high


def _load_pair(base_spec: str, tuned_spec: str, **load: Any) -> tuple[LoadedModel, LoadedModel]:
    adapter_base = load.pop("adapter_base")
    if method := quantized_checkpoint(base_spec):
        raise _quantized(base_spec, method)
    base = load_model(base_spec, **load)
    if base.source == "adapter":
        raise ForgetlessError(f"BASE '{base_spec}' is a PEFT adapter", "pass the model the fine-tune started from")
    tuned = load_model(tuned_spec, base=adapter_base, **load)
    for spec, loaded in ((base_spec, base), (tuned_spec, tuned)):
        if bits := quantized_bits(loaded.model):
            raise _quantized(spec, f"bitsandbytes {bits}")
    if problems := compatibility_problems(base, tuned):
        raise ForgetlessError(
            f"'{tuned_spec}' cannot be interpolated with '{base_spec}':\n" + "\n".join(f"  - {p}" for p in problems),
            "TUNED must be a fine-tune (or LoRA adapter) of exactly BASE: pass the model it was tuned from",
        )
    if tuned.source == "adapter":
        merge = "merge the adapter (merge_and_unload, save_pretrained) and repair the merged model"
        check_linear_adapter(tuned.model, merge)
        saved = [c.modules_to_save for c in tuned.model.peft_config.values() if getattr(c, "modules_to_save", None)]
        if saved or not lora_b(tuned.model):
            raise ForgetlessError(f"adapter '{tuned_spec}' is not plain LoRA (or trains whole modules {saved})", merge)
    return base, tuned


def _quantized(spec: str, method: str) -> ForgetlessError:
    """Interpolation mixes full-precision weights; a quantized model has none to mix."""
    return ForgetlessError(
        f"'{spec}' is quantized ({method}): repair interpolates weights in full precision, and a quantized model "
        "holds packed integers with per-block scales, which cannot be mixed linearly",
        "pass the full-precision model it was quantized from as BASE (for a QLoRA run, its model.path: the "
        "adapter is then scaled over that base; with an adapter, --base names it)",
    )


def repair(
    base_spec: str,
    tuned_spec: str,
    suite: Suite,
    budget: Budget | str,
    *,
    out: Path,
    target: Probe | None = None,
    steps: int = 4,
    device: str = "auto",
    dtype: str = "float32",
    adapter_base: str | None = None,
    cache: ResultCache | None = None,
    options: ScoreOptions | None = None,
    false_alarm: float = 0.05,
    accept: str = "within",
) -> dict[str, Any]:
    """Find the largest WiSE-FT alpha that `accept` takes against `budget`; write the model and the report.

    Args:
        base_spec: the model before fine-tuning (full weights).
        tuned_spec: the fine-tune: full weights, or a PEFT LoRA adapter folder on `base_spec`.
        suite: the general probes the budget bounds.
        budget: a Budget or its text, e.g. '2pt,5%,lambada:10%'.
        out: folder for `model/`, `repair.json` and `repair.md`.
        target: the user's held-out text probe (its gain is reported at every alpha).
        steps: bisection steps; the chosen alpha is exact to 1 / 2**steps.
        adapter_base: base model for an adapter that does not name a loadable one.
        false_alarm: the chance of calling over budget (so lowering alpha below 1) a fine-tune whose probes are
            within budget.
        accept: "within" (default): the largest alpha whose status is within (every budgeted probe shown within
            its limit), else the base; "not_over": the largest alpha with no probe shown over (inconclusive
            alphas count).

    Returns:
        The repair.json document (schema forgetless.repair/1): every point's `status`, the rule that chose
        (`accept`, `rule`) and the chosen alpha's `status`.
    """
    budget = budget if isinstance(budget, Budget) else Budget.parse(budget)
    probes = [*suite.probes, *([target] if target else [])]
    problems = budget_problems(budget, probes)
    if not 1 <= steps <= 12:
        problems.append(f"--steps {steps} must be 1 to 12 (resolution 1/2 to 1/4096)")
    if not 0 < false_alarm < 1:
        problems.append(f"--false-alarm {false_alarm} must be between 0 and 1, e.g. 0.05")
    if accept not in ACCEPT:
        problems.append(f"--accept '{accept}' must be within or not-over (not_over from Python)")
    if problems:
        raise ConfigError(f"--budget '{budget}'", problems)
    base, tuned = _load_pair(base_spec, tuned_spec, device=device, dtype=dtype, adapter_base=adapter_base)
    described = {"base": base.describe(), "tuned": tuned.describe()}
    cache = cache or ResultCache()
    adapter = tuned.source == "adapter"
    original_b = {n: p.detach().clone() for n, p in lora_b(tuned.model)}
    base_w, tuned_w, work = full_weights(base), full_weights(tuned), None

    def model_at(alpha: float) -> Any:
        nonlocal work
        if adapter:
            scale_lora_(tuned.model, alpha, original_b)
            return tuned.model
        if alpha in (0.0, 1.0):
            return base.model if alpha == 0 else tuned.model
        if work is None:
            work = copy.deepcopy(tuned.model)  # the one working copy beside base and tuned
        interpolate_(work, base_w, alpha, tuned_w)
        return work

    extra = [target] if target else []
    evals = {0.0: evaluate(base, suite, extra_probes=extra, cache=cache, options=options)}
    curve: dict[float, dict[str, Any]] = {}

    def score(alpha: float) -> bool:
        if alpha > 0:
            lm = LoadedModel(
                model_at(alpha),
                tuned.tokenizer,
                f"{tuned_spec} (alpha {alpha:g})",
                "interpolated",
                {"alpha": alpha, "base": base_spec, "dtype": dtype},
            )
            evals[alpha] = evaluate(lm, suite, extra_probes=extra, cache=cache, options=options)
        comparisons = compare_evals(probes, evals[0.0], evals[alpha])
        checks = budget.check(comparisons, false_alarm / (steps + 1)) if alpha > 0 else []
        gain = next((c for c in comparisons if c.role == "target"), None)
        change = None if gain is None else gain.relative if gain.metric == "perplexity" else gain.delta
        # alpha 0 is the base itself: within by definition (it loses nothing against itself).
        status = budget_status(checks) if alpha > 0 else "within"
        curve[alpha] = {
            "alpha": alpha,
            "status": status,
            "checks": [c.to_dict() for c in checks],
            "target_metric": None if gain is None else gain.metric,
            "target_change": change,
            "target_gain": None if gain is None else -change if not gain.higher_is_better else change,
        }
        return status == "within" if accept == "within" else status != "over"

    score(0.0)
    chosen, rejected = bisect(score, steps)
    _save_model(model_at(chosen), tuned.tokenizer, out / "model")
    points = [curve[a] for a in sorted(curve)]
    result = {
        "schema": REPAIR_SCHEMA,
        "forgetless_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **described,
        "suite": evals[0.0]["suite"],
        "budget": str(budget),
        "false_alarm": false_alarm,
        "steps": steps,
        "curve": points,
        "accept": accept,
        "rule": ACCEPT[accept],
        "chosen_alpha": chosen,
        "status": curve[chosen]["status"],  # the repaired model's
        "next_alpha": rejected,  # the smallest alpha above the chosen one that the rule rejected (status: curve)
        "next_over_alpha": rejected if rejected is not None and curve[rejected]["status"] == "over" else None,
        "model": str(out / "model"),
        "summary": _summary(curve, chosen, rejected, str(budget), accept),
        "audit": build_audit(probes, evals[0.0], evals[chosen]),
    }
    from forgetless.report.repair import repair_markdown  # the report layer; imports rich

    write_json_atomic(out / "repair.json", result)
    write_text_atomic(out / "repair.md", repair_markdown(result))
    return result


def _save_model(model: Any, tokenizer: Any, folder: Path) -> None:
    """save_pretrained into a temporary folder, then swap it in: `folder` is never half-written."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def _summary(
    curve: dict[float, dict[str, Any]], chosen: float, rejected: float | None, budget: str, accept: str = "within"
) -> str:
    """The repair in one sentence: the rule, what it chose, and the status of that choice in plain words."""

    def target(alpha: float) -> str:
        change, metric = curve[alpha]["target_change"], curve[alpha]["target_metric"]
        return "" if change is None else f"target {metric} {change:+.1%}"

    def probes(alpha: float, status: str) -> str:
        return ", ".join(dict.fromkeys(c["probe"] for c in curve[alpha]["checks"] if c["status"] == status))

    def undecided(alpha: float) -> str:
        items = [c.get("items_to_decide") for c in curve[alpha]["checks"] if c["status"] not in ("within", "over")]
        known = [n for n in items if n]
        return f"about {max(known)} items would decide" if known else "more items would decide"

    rule = "accept: within" if accept == "within" else "accept: not-over"
    status = curve[chosen]["status"]
    if rejected is None:  # alpha 1 accepted: nothing to repair
        if status == "within":
            verdict = f"is within budget {budget}: nothing needed repair"
        else:
            verdict = (
                f"is not over budget {budget}, but not shown within it either (inconclusive: "
                f"{probes(1.0, 'inconclusive')}; {undecided(1.0)}): nothing was repaired ({rule})"
            )
        return f"alpha 1 (the fine-tune) {verdict}" + (f"; {target(1.0)}" if target(1.0) else "")
    next_status = curve[rejected]["status"]
    why = f"alpha {rejected:g} is {next_status}: {probes(rejected, next_status) or 'no probe checked'}"
    if chosen == 0:
        shown = "shown within" if accept == "within" else "not shown over"
        return (
            f"no alpha > 0 was {shown} budget {budget} ({rule}): the repaired model is the base (alpha 0, no "
            f"target gain); {why}"
        )
    gains = f" ({target(chosen)}; the fine-tune's: {target(1.0).removeprefix('target ')})" if target(1.0) else ""
    shown = "shown within" if accept == "within" else "not shown over"
    head = f"alpha {chosen:g} is the largest alpha {shown} budget {budget} ({rule})"
    if status != "within":  # only under not-over: say plainly that it is not within
        head += (
            f"; it is not shown within budget either (inconclusive: {probes(chosen, 'inconclusive')}; "
            f"{undecided(chosen)})"
        )
    elif accept != "within":
        head += "; it is shown within budget"
    return f"{head}{gains}; {why}"
