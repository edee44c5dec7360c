"""The work behind each CLI command, kept apart from argument parsing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.report.html import write_report
from forgetless.report.terminal import print_table, say, slug, write_outputs


def _options(batch_tokens: int):  # noqa: ANN202
    from forgetless.probes import ScoreOptions

    if batch_tokens < 1:
        raise ForgetlessError(f"--batch-tokens {batch_tokens} must be positive", "use e.g. 4096")
    return ScoreOptions(batch_tokens=batch_tokens)


def _suite_and_target(suite: str, target: Path | None, limit: int | None):  # noqa: ANN202
    from forgetless.evaluation.evaluate import target_probe
    from forgetless.suites import load_suite

    if limit is not None and limit < 1:
        raise ForgetlessError(f"--limit {limit} must be at least 1", "omit --limit to use the suite's own sizes")
    loaded = load_suite(suite, limit=limit)
    extra = []
    if target is not None:
        if not target.exists():
            raise ForgetlessError(f"--target '{target}' does not exist", "pass a text file, folder or JSONL file")
        extra.append(target_probe(str(target)))
    return loaded, extra


def run_eval(model, suite, target, limit, out_dir, device, dtype, batch_tokens, no_cache, base) -> None:  # noqa: ANN001
    from forgetless.api import evaluate
    from forgetless.report.rows import EVAL_HEADER, eval_rows

    loaded, _ = _suite_and_target(suite, target, limit)  # the flags, checked before any model loads
    _options(batch_tokens)
    result = evaluate(
        model,
        loaded,
        target=target,
        device=device,
        dtype=dtype,
        adapter_base=base,
        batch_tokens=batch_tokens,
        cache=not no_cache,
    )
    print_table(f"{model} on suite '{loaded.name}'", EVAL_HEADER, eval_rows(result.to_json()))
    folder = out_dir or Path("forgetless-out") / f"eval-{slug(model)}-{loaded.name}"
    say("wrote " + ", ".join(str(p) for p in result.write(folder)))


def run_audit(
    base_model,
    tuned_model,
    suite,
    target,
    limit,
    out_dir,
    device,
    dtype,
    batch_tokens,
    no_cache,
    base,
    budget=None,
    false_alarm=0.05,
) -> Any:  # noqa: ANN001
    from forgetless.api import audit
    from forgetless.report.rows import AUDIT_HEADER, audit_rows

    loaded, _ = _suite_and_target(suite, target, limit)
    _options(batch_tokens)
    result = audit(
        base_model,
        tuned_model,
        suite=loaded,
        budget=budget,
        false_alarm=false_alarm,
        target=target,
        device=device,
        dtype=dtype,
        adapter_base=base,
        batch_tokens=batch_tokens,
        cache=not no_cache,
    )
    print_table(f"{tuned_model} against {base_model}", AUDIT_HEADER, audit_rows(result.to_json()))
    say((result.headline, "bold"))
    if result.budget is not None:
        say((result.budget_verdict, "bold"), *[f"\n  {c.describe()}" for c in result.checks])
    folder = out_dir or Path("forgetless-out") / f"audit-{slug(tuned_model)}-vs-{slug(base_model)}-{loaded.name}"
    say("wrote " + ", ".join(str(p) for p in result.write(folder)))
    return result


def run_audit_lm_eval(base_dir, tuned_dir, out_dir, budget, false_alarm, model_options) -> Any:  # noqa: ANN001
    """`audit --lm-eval-samples`: the audit of two lm-eval `--log_samples` folders, printed and written."""
    from forgetless.pipeline.lm_eval_audit import audit_lm_eval_samples
    from forgetless.report.rows import AUDIT_HEADER, audit_rows

    if model_options:
        flags = ", ".join("--" + name.replace("_", "-") for name in model_options)
        raise ForgetlessError(
            f"{flags} score a model, and --lm-eval-samples reads what lm-eval scored already",
            "drop them, or audit the models themselves without --lm-eval-samples",
        )
    result = audit_lm_eval_samples(base_dir, tuned_dir, budget=budget, false_alarm=false_alarm)
    print_table(f"lm-eval samples: {tuned_dir} against {base_dir}", AUDIT_HEADER, audit_rows(result.to_json()))
    say((result.headline, "bold"))
    for line in result.extra["lm_eval"]["notes"]:
        say(("note: ", "yellow"), line)
    if result.budget is not None:
        say((result.budget_verdict, "bold"), *[f"\n  {c.describe()}" for c in result.checks])
    folder = out_dir or Path("forgetless-out") / f"audit-lm-eval-{slug(str(tuned_dir))}-vs-{slug(str(base_dir))}"
    say("wrote " + ", ".join(str(p) for p in result.write(folder)))
    return result


def run_repair(
    base_model,
    tuned_model,
    budget,
    suite,
    target,
    limit,
    steps,
    out_dir,
    device,
    dtype,
    batch_tokens,
    no_cache,
    base,
    false_alarm=0.05,
    accept="within",
    fail_on="over",
) -> int:  # noqa: ANN001
    """The repair, printed and written; returns the exit code of the repaired model's status (cli/exit_codes.py)."""
    from forgetless.cache import ResultCache
    from forgetless.cli.exit_codes import check_gate_options, gate_status
    from forgetless.pipeline.repair import repair
    from forgetless.report.repair import curve_table

    check_gate_options(budget, fail_on)
    accept = {"not-over": "not_over"}.get(accept, accept)  # the flag's spelling; Python's is not_over
    loaded, extra = _suite_and_target(suite, target, limit)
    options = _options(batch_tokens)
    folder = out_dir or Path("forgetless-out") / f"repair-{slug(tuned_model)}-{loaded.name}"
    result = repair(
        base_model,
        tuned_model,
        loaded,
        budget,
        out=folder,
        target=extra[0] if extra else None,
        steps=steps,
        device=device,
        dtype=dtype,
        adapter_base=base,
        cache=ResultCache(reuse=not no_cache),
        options=options,
        false_alarm=false_alarm,
        accept=accept,
    )
    header, rows = curve_table(result)
    print_table(f"{tuned_model} interpolated with {base_model}, budget {result['budget']}", header, rows)
    say((result["summary"], "bold"))
    say(f"chosen by {result['rule']}; the repaired model's status: ", (result["status"], "bold"))
    report = write_report(folder, "repair", result)
    say(f"wrote {folder / 'model'}, {folder / 'repair.json'}, {folder / 'repair.md'}, {report}")
    return gate_status(result["status"], result["budget"], fail_on)


def run_ls(what: str) -> None:
    from forgetless.probes import PROBES
    from forgetless.registry import unknown_name_error
    from forgetless.suites import builtin_suites, load_suite

    if what == "methods":
        from forgetless.methods import METHODS

        rows = [
            [name, (sys.modules[METHODS.get(name).__module__].__doc__ or "").strip().splitlines()[0]]
            for name in METHODS.names()
        ]
        print_table("methods", ["method", "what it does"], rows)
    elif what == "probes":
        rows = []
        for name in PROBES.names():
            module = sys.modules[PROBES.get(name).__module__]
            rows.append([name, (module.__doc__ or "").strip().splitlines()[0]])
        print_table("probe kinds", ["kind", "what it measures"], rows)
    elif what == "suites":
        rows = []
        for name in builtin_suites():
            suite = load_suite(name)
            probes = ", ".join(f"{p.config.name} ({p.config.kind})" for p in suite.probes)
            rows.append([name, " ".join(suite.description.split()), probes])
        print_table("built-in suites", ["suite", "description", "probes"], rows)
    else:
        raise unknown_name_error("listing", what, ["methods", "probes", "suites"])


def run_auto(loaded: Any, config_dir: Path, resume: bool = False, fresh: bool = False, fail_on: str = "over") -> int:
    from forgetless.cli.exit_codes import gate_status
    from forgetless.pipeline.auto import auto_search

    report = auto_search(loaded, config_dir, resume=resume, fresh=fresh)
    rows = [
        [
            str(t["rung"]),
            str(t["steps"]),
            f"{t['value']:g}",
            "-" if t["target_change"] is None else f"{t['target_change']:+.1%}",
            t["status"] or "-",
        ]
        for t in report["trials"]
    ]
    header = ["rung", "steps", report["field"], "target perplexity change", "budget status"]
    print_table(f"--auto: {report['method']}.{report['field']}, budget {report['budget']}", header, rows)
    chosen = report["chosen"]
    say((f"chose {report['field']} = {chosen['value']:g}", "bold"), f" ({chosen['status']}); its run: {chosen['run']}")
    say(f"wrote {loaded.output_dir}/auto.json and auto.md")
    return gate_status(chosen["status"], report["budget"], fail_on)


def run_compare(paths: list[Path], budget: str | None, out_dir: Path | None) -> None:
    from forgetless.paths import write_bytes_atomic, write_text_atomic
    from forgetless.pipeline.compare import compare
    from forgetless.report.compare_page import COMPARE_HEADER, compare_markdown, compare_page, compare_rows
    from forgetless.report.frontier import frontier_png

    result = compare(paths, budget)
    print_table("target gain against what was kept", COMPARE_HEADER, compare_rows(result))
    folder = out_dir or Path("forgetless-out") / "compare"
    written = write_outputs(folder, result, compare_markdown(result), "compare")
    write_bytes_atomic(folder / "frontier.png", frontier_png(result))
    write_text_atomic(folder / "report.html", compare_page(result))
    say("wrote " + ", ".join(str(p) for p in [*written, folder / "frontier.png", folder / "report.html"]))


def run_validate(config: Path, overrides: list[str]) -> None:
    import yaml

    from forgetless.cli.cmd_plan import validate_lines
    from forgetless.config import load_run_config
    from forgetless.pipeline.run import resolved

    loaded, methods = load_run_config(config, overrides)
    names = ", ".join(m.config.name for m in methods)
    say((f"{config} is valid", "green"), f": {len(loaded.stages)} stage(s), methods {names}")
    # What the budget can decide (guard.plan), from the configured limits; as YAML comments, so the rest parses.
    for line in validate_lines(loaded):
        say(f"# {line}")
    say(yaml.safe_dump(resolved(loaded, methods), sort_keys=False))


def run_run(
    config: Path, overrides: list[str], resume: bool, auto: bool = False, fresh: bool = False, fail_on: str = "over"
) -> int:
    """The run, printed and written; returns the exit code of the final model's status (cli/exit_codes.py)."""
    from forgetless.cli.exit_codes import OK, check_gate_options, gate_status
    from forgetless.config import load_run_config
    from forgetless.pipeline.run import final_state, run
    from forgetless.report.rows import AUDIT_HEADER, audit_rows

    loaded, methods = load_run_config(config, overrides)  # every error before any model loads
    check_gate_options(loaded.guard.budget, fail_on)
    if auto:
        return run_auto(loaded, config.parent, resume, fresh, fail_on)
    result = run(loaded, methods, config.parent, resume=resume, fresh=fresh)
    if result is None:
        return OK  # not rank 0: rank 0 prints, writes and gives the verdict
    print_table("final model against the base", AUDIT_HEADER, audit_rows(result["final"]))
    if result["transfer"]:
        t = result["transfer"]
        say(f"stages: BWT {t['bwt']:+.4f}, forgetting {t['forgetting']:+.4f}, FWT {t['fwt']:+.4f}")
    say((result["final"]["summary"]["headline"], "bold"))
    guard = result["guard"]
    if guard["budget"]:
        say((f"Final model: {final_state(guard)}", "bold"), f" (budget {guard['budget']})")
    say(f"wrote {loaded.output_dir}/results.json, summary.md, report.html, config.yaml and the model of every stage")
    return gate_status(guard["status"], guard["budget"], fail_on)
