"""`forgetless run`: baseline probes -> fine-tune stage by stage -> probes after each stage -> results.

Each stage's held-out data becomes a perplexity probe scored after every stage, which fills the
accuracy matrix R (score = -log perplexity, higher is better; row 0 is the base model), from which
BWT, the forgetting measure and forward transfer follow. Only rank 0 evaluates and writes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from forgetless.config.run import RunConfig
from forgetless.diagnostics.stage import stage_diagnostics, start_folder
from forgetless.distributed import barrier, is_main_process, world_size
from forgetless.evaluation.audit import build_audit
from forgetless.evaluation.evaluate import evaluate, target_probe
from forgetless.evaluation.results import BudgetCheck, budget_status, guard_status
from forgetless.guard.budget import Budget
from forgetless.guard.kl_signal import KLSignal
from forgetless.guard.procedure import last_over_share
from forgetless.guard.watch import Watch, WatchSettings
from forgetless.methods import Method, TrainContext
from forgetless.metrics import average_accuracy, backward_transfer, forgetting_measure, forward_transfer
from forgetless.models import LoadedModel, load_model
from forgetless.paths import write_json_atomic, write_text_atomic
from forgetless.pipeline.folder import claim, fingerprint
from forgetless.probes import Comparison, Probe
from forgetless.report.html import write_report
from forgetless.report.legends import budget_legend
from forgetless.report.markdown import audit_markdown
from forgetless.suites import load_suite, with_leak_markers
from forgetless.train.data import load_examples, load_keep, template_markers
from forgetless.train.finetune import FinetuneSettings, finetune, settings_from

RUN_SCHEMA = "forgetless.run/1"


def stage_score(eval_result: dict[str, Any], probe_name: str) -> float:
    """A stage probe's entry in R: -log(perplexity), so that higher is better like accuracy."""
    probe = next(p for p in eval_result["probes"] if p["name"] == probe_name)
    return -math.log(probe["metrics"]["perplexity"]["value"])


def transfer_metrics(R: list[list[float]]) -> dict[str, Any] | None:
    """The stage matrix R with BWT, forgetting and FWT; None when they are undefined, so nothing is written
    or printed for them: with one stage (no earlier stage to forget or to transfer from; the metrics are
    NaN, which is not JSON), or when a stage has no held-out data (R is not (T + 1) x T)."""
    T = len(R[0]) if R else 0
    if T < 2 or len(R) != T + 1:
        return None
    return {
        "R": R,
        "score": "-log perplexity on each stage's held-out data (higher is better); row 0 = base model",
        "average": average_accuracy(R),
        "bwt": backward_transfer(R),
        "forgetting": forgetting_measure(R),
        "fwt": forward_transfer(R),
    }


def _settings(config: RunConfig, stage_index: int) -> FinetuneSettings:
    stage = config.stages[stage_index]
    folder = f"stage-{stage_index + 1}-{stage.name}"
    args = dict(config.training.args)
    if "logging_dir" in args:  # the user's TensorBoard folder: one run in it per stage
        args["logging_dir"] = str(Path(args["logging_dir"]) / folder)
    return settings_from(
        config.training,
        steps=stage.steps or config.training.steps,
        pack=stage.data.format == "pack",
        args=args,
        logging_dir=Path(config.output_dir or ".") / "logs" / folder,  # not checkpoints/runs/<date>
    )


def run(
    config: RunConfig, methods: list[Method], config_dir: Path, resume: bool = False, fresh: bool = False
) -> dict[str, Any] | None:
    """Run every stage; returns the results on rank 0 (None elsewhere).

    `resume` continues the run in `output_dir` (same settings only); `fresh` discards it first. Without
    either, a folder holding an earlier run is refused (see `pipeline.folder`).
    """
    out: Path = config.output_dir  # type: ignore[assignment]  (set by load_run_config)
    claim(out, fingerprint(resolved(config, methods), config_dir), resume, fresh)  # before any model loads
    # Generation probes count the stages' own template text in their answers (a format leaking into everything).
    markers = list(dict.fromkeys(m for stage in config.stages for m in template_markers(stage.data)))
    suite = with_leak_markers(load_suite(config.suite), markers)
    lm = load_model(config.model.path, device=config.device, **config.model.load_kwargs())
    tok = lm.tokenizer
    keep, keep_stream = load_keep(config.keep, tok, config_dir) if config.keep else ([], None)
    stages, stage_probes, held_outs = [], [], []
    for stage in config.stages:
        train, held_out = load_examples(stage.data, tok, config_dir, f"stage '{stage.name}' data")
        stages.append(train)
        held_outs.append(list(held_out))  # the KL signal's inputs: the new task's, never trained on
        if held_out:
            path = out / "data" / f"{stage.name}_heldout.jsonl"
            if is_main_process():
                write_text_atomic(path, "".join(json.dumps({"text": t}) + "\n" for t in held_out))
            stage_probes.append(_stage_probe(path, stage.name))
    barrier()
    probes: list[Probe] = [*suite.probes, *stage_probes]
    if is_main_process():
        write_text_atomic(out / "config.yaml", yaml.safe_dump(resolved(config, methods), sort_keys=False))
    baseline = evaluate(lm, suite, extra_probes=stage_probes) if is_main_process() else None
    watched = with_leak_markers(load_suite(config.guard.probes), markers) if config.guard.probes else suite
    watch_base = evaluate(lm, watched, extra_probes=stage_probes) if is_main_process() else None
    evals, stopped = [baseline], None
    context = TrainContext(
        tokenizer=tok, keep_texts=keep, keep_stream=keep_stream, seed=config.training.seed, state_dir=out / "state"
    )
    model = lm.model
    for i, stage in enumerate(config.stages):
        context.stage = i
        stage_dir = out / f"stage-{i + 1}-{stage.name}"
        target = f"stage_{stage.name}" if any(p.config.name == f"stage_{stage.name}" for p in stage_probes) else None
        watch = _watch(config, [*watched.probes, *stage_probes], watch_base, target, stage_dir, tok, held_outs[i])
        previous = out / f"stage-{i}-{config.stages[i - 1].name}" / "model" if i else None  # this stage's start
        start = start_folder(model, previous)
        diag = stage_diagnostics(config.diagnostics, context, stages[i], suite.probes, start, stage_dir / "diagnostics")
        model, training = finetune(
            *(model, tok, stages[i], stage_dir / "checkpoints", _settings(config, i), methods, context),
            resume=resume,
            callbacks=[c for c in (watch, watch and watch.settings.kl, diag) if c] or None,
        )
        if watch:
            training["watch"] = watch.report()
            if watch.history["stopped"]:
                stopped = {"stage": stage.name, **watch.history["stopped"]}
        if is_main_process():
            model.save_pretrained(stage_dir / "model")
            tok.save_pretrained(stage_dir / "model")
            kept = ("dtype", "trust_remote_code", "quantization")  # how the base loaded: the tuned model's too
            details = {k: lm.details[k] for k in kept if k in lm.details}
            tuned = LoadedModel(model, tok, str(stage_dir / "model"), "folder", details)
            stage_eval = evaluate(tuned, suite, extra_probes=stage_probes)
            stage_eval["training"] = training
            if diag:
                stage_eval["diagnostics"] = diag.report(model)
            write_json_atomic(stage_dir / "eval.json", stage_eval)
            evals.append(stage_eval)
        barrier()
        if stopped:  # the guard stopped the run: later stages would start from a model over budget
            break
    if not is_main_process():
        return None
    names = [p.config.name for p in stage_probes]
    return _write_results(config, methods, probes, evals, names, out, stopped)


def stage_false_alarm(config: RunConfig) -> float:
    return config.guard.false_alarm / max(1, len(config.stages))


def _watch(
    config: RunConfig,
    probes: list[Probe],
    baseline: Any,
    target: str | None,
    stage_dir: Path,
    tok: Any,
    held_out: list[str],
) -> Watch | None:
    guard = config.guard
    if not guard.watch:
        return None
    budget = Budget.parse(guard.budget)
    kl = None
    if (guard.kl or budget.kl_limit) and held_out:
        length = min(128, config.training.max_length)
        kl = KLSignal(held_out, max_length=length, state_dir=stage_dir / "watch", tokenizer=tok)
    settings = WatchSettings(
        probes=probes,
        baseline=baseline,
        state_dir=stage_dir / "watch",
        budget=budget,
        policy=guard.policy,
        rollback_to=guard.rollback_to,
        every=None if guard.every == "auto" else guard.every,
        overhead=guard.overhead,
        target=target,
        false_alarm=stage_false_alarm(config),  # the run's rate, shared equally by its stages
        sequential=guard.sequential,
        kl=kl,
    )
    return Watch(settings, tok)


def _stage_probe(path: Path, stage_name: str) -> Probe:
    probe = target_probe(str(path))
    probe.config = probe.config.model_copy(
        update={"name": f"stage_{stage_name}", "description": f"held-out {stage_name}"}
    )
    return probe


def resolved(config: RunConfig, methods: list[Method]) -> dict[str, Any]:
    """The config as it ran: defaults filled in, overrides applied, every method's full settings."""
    data = config.model_dump(mode="json")
    data["methods"] = [m.config.model_dump(mode="json") for m in methods]
    return data


def _write_results(
    config: RunConfig,
    methods: list[Method],
    probes: list[Probe],
    evals: list[dict[str, Any]],
    stage_probe_names: list[str],
    out: Path,
    stopped: dict[str, Any] | None,
) -> dict[str, Any]:
    audit = build_audit(probes, evals[0], evals[-1])
    done = stage_probe_names[: len(evals) - 1]  # fewer when the guard stopped the run early
    R = [[stage_score(e, name) for name in done] for e in evals] if done else []
    budget = Budget.parse(config.guard.budget)
    # With a watch, the final weights were judged at the last stage's last check (its share of the stage's
    # rate, see guard.procedure); judging them again at the full rate would be a look the rate does not cover.
    watched = config.guard.watch and bool(budget)
    rate = stage_false_alarm(config) if watched else config.guard.false_alarm
    alpha = last_over_share(rate) if watched else rate
    final = [Comparison(**c) for c in audit["comparisons"]]
    final_checks = budget.check(final, alpha, rate) if budget else []
    # The KL has no final evaluation of its own: its check at the last step's watch check is the final one.
    last = (((evals[-1].get("training") or {}).get("watch") or {}).get("points") or [{}])[-1] if len(evals) > 1 else {}
    kl_final = [c for c in last.get("checks", []) if c["unit"] == "kl"] if last.get("last") else []
    checks = [*final_checks, *(BudgetCheck(**c) for c in kl_final)]
    result = {
        "schema": RUN_SCHEMA,
        "config": resolved(config, methods),
        "baseline": evals[0],
        "stages": evals[1:],
        "final": audit,
        "transfer": transfer_metrics(R) if R else None,
        "guard": {
            "budget": str(budget),
            "policy": config.guard.policy,
            "rollback_to": config.guard.rollback_to,
            "false_alarm": config.guard.false_alarm,
            "stopped": stopped,
            "final": [c.to_dict() for c in checks],
            # within only when every final check is shown within; None without a budget (or nothing it bounds)
            "status": budget_status(checks) if budget else None,
        },
        "world_size": world_size(),
    }
    write_json_atomic(out / "results.json", result)
    write_text_atomic(out / "summary.md", run_markdown(result))
    write_report(out, "run", result)  # last: the JSON is safe on disk before any figure is drawn
    return result


def run_markdown(result: dict[str, Any]) -> str:
    methods = ", ".join(m["name"] for m in result["config"]["methods"])
    model = result["config"]["model"]
    lines = [f"# forgetless run: {model if isinstance(model, str) else model['path']} with {methods}", ""]
    transfer = result["transfer"]
    if transfer:
        lines += ["## Stages", "", f"Score: {transfer['score']}.", ""]
        names = [s["name"] for s in result["config"]["stages"]]
        lines += ["| after | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for i, row in enumerate(transfer["R"]):
            label = "base" if i == 0 else names[i - 1]
            lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
        lines += [
            "",
            f"BWT {transfer['bwt']:+.4f}, forgetting {transfer['forgetting']:+.4f}, "
            f"FWT {transfer['fwt']:+.4f}, average {transfer['average']:.4f}",
            "",
        ]
    lines += guard_markdown(result["guard"])
    lines += watch_markdown(result["stages"])
    body = audit_markdown(result["final"]).split("\n", 1)[1]  # drop the audit's own title
    return "\n".join(lines + ["## Final model against the base", body])


def guard_markdown(guard: dict[str, Any]) -> list[str]:
    """What the budget said and what the guard did, in words: "within budget" only when the status is within."""
    if not guard["budget"]:
        return []
    lines = ["## Forgetting budget", "", f"Budget `{guard['budget']}`, policy `{guard['policy']}`.", ""]
    stopped = guard["stopped"]
    if stopped:
        what = {"stop": "stopped the run", "rollback": "rolled back and stopped the run"}.get(
            stopped["action"], f"stopped the run ({stopped['action']})"
        )
        lines.append(f"- The guard {what} in stage `{stopped['stage']}` at step {stopped['step']}: {stopped['why']}.")
        if stopped["action"] == "rollback":
            lines.append(f"- {restored_text(stopped)}.")
    lines.append(f"- Final model: {final_state(guard)}.")
    lines += [f"  - {_describe(c)}" for c in guard["final"]]
    legend = budget_legend(guard.get("false_alarm"))
    return [*lines, "", *([legend, ""] if legend else [])]


def restored_text(stopped: dict[str, Any]) -> str:
    """Which weights a rollback restored and why (the Watch's `restored_why`); the base weights said plainly."""
    step = stopped.get("restored_step")
    why = stopped.get("restored_why") or ""  # runs written before `restored_why` did not say why
    if step == 0:
        reason = why.split("; the base weights")[0] or "no earlier check could be restored"
        text = f"{reason}; the base weights were restored: the returned model is the base model (no target gain)"
    elif step is None:
        text = "no weights were restored: the returned model is the one trained up to the breach"
    else:
        text = why or f"restored step {step}"
    return text[0].upper() + text[1:]


def final_state(guard: dict[str, Any]) -> str:
    """within budget / OVER budget / inconclusive: not shown within budget (PROBES inconclusive; about N items
    would decide); read from `status`, or from the checks of results written before it."""
    status = guard_status(guard)
    if status == "within":
        return "within budget"
    if status == "over":
        return "OVER budget"
    if status is None:
        return "no budgeted probe was checked: not shown within budget"
    unclear = [c for c in guard["final"] if c["status"] not in ("within", "over")]
    probes = ", ".join(dict.fromkeys(c["probe"] for c in unclear))
    items = [c["items_to_decide"] for c in unclear if c.get("items_to_decide")]
    decide = f"about {max(items)} items would decide" if items else "more items would decide"
    return f"inconclusive: not shown within budget ({probes} inconclusive; {decide})"


def watch_markdown(stages: list[dict[str, Any]]) -> list[str]:
    """How often each stage was checked during training and what the checks cost."""
    lines = []
    for stage in stages:
        watch = stage.get("training", {}).get("watch")
        if not watch:
            continue
        checks = [p for p in watch["points"] if p["step"] > 0]
        share = f" ({watch['overhead']:.0%} of the training time)" if watch["overhead"] is not None else ""
        steps = ", ".join(str(p["step"]) for p in checks)
        lines.append(f"- {len(checks)} checks during training (steps {steps}): {watch['watch_seconds']:.1f} s{share}.")
    return ["## Watch", "", *lines, ""] if lines else []


def _describe(check: dict[str, Any]) -> str:
    return BudgetCheck(**check).describe()
