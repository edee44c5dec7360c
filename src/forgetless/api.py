"""`forgetless.evaluate` and `forgetless.audit`: score a model, or what a fine-tune forgot, from Python.

The CLI's `eval` and `audit` commands call these same functions. A model is a path or a name
(local folder, `.gguf` file, PEFT adapter folder, hub id, the built-in `smollm2-135m`) or a model
in memory (a transformers model or a PEFT model, with `tokenizer=`).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from forgetless.cache import ResultCache
from forgetless.errors import ConfigError, ForgetlessError
from forgetless.evaluation.audit import build_audit
from forgetless.evaluation.evaluate import evaluate as evaluate_suite
from forgetless.evaluation.evaluate import target_probe
from forgetless.evaluation.results import Audit, EvalResult, budget_status
from forgetless.guard.budget import Budget, probe_metrics
from forgetless.models import LoadedModel, from_memory, load_model
from forgetless.probes import Comparison, Probe, ScoreOptions
from forgetless.suites import Suite, load_suite

ModelLike = Any  # str | Path | a transformers or PEFT model | LoadedModel


def evaluate(
    model_or_path: ModelLike,
    suite: str | Path | Suite = "quick",
    *,
    tokenizer: Any = None,
    target: str | Path | None = None,
    limit: int | None = None,
    device: str = "auto",
    dtype: str = "float32",
    adapter_base: str | None = None,
    batch_tokens: int = 4096,
    cache: bool | ResultCache = True,
) -> EvalResult:
    """Score one model on a probe suite: each probe's metrics with 95% intervals.

    Args:
        model_or_path: a model folder, `.gguf` file, PEFT adapter folder, hub id or `"smollm2-135m"`; or a
            transformers / PEFT model in memory (then pass `tokenizer`; it is scored where it is, in eval mode,
            and its train/eval mode is restored after).
        suite: a built-in suite ("quick", "general"), a suite YAML file, or a loaded `Suite`.
        tokenizer: the tokenizer of an in-memory model.
        target: held-out text of your own task (text file, folder, or JSONL with `text`), scored as the
            perplexity probe `target`.
        limit: cap every probe at this many items (a quick look; the numbers change).
        device: for a model loaded from a path: "auto", "cpu", "cuda", "cuda:1"...
        dtype: for a model loaded from a path: "float32", "bfloat16" or "float16".
        adapter_base: the base model of a PEFT adapter folder that does not name a loadable one.
        batch_tokens: tokens per scoring batch (memory against speed).
        cache: reuse cached probe results (True), recompute them (False), or a `ResultCache` to use.

    Returns:
        The `EvalResult`; `.to_json()` is `eval.json`, `.write(folder)` writes it with Markdown and HTML.

    Raises:
        ForgetlessError: a bad argument, naming it and the fix, before any model loads.
    """
    loaded, extra, options, store = _prepare(suite, target, limit, batch_tokens, cache)
    loading = {"device": device, "dtype": dtype, "base": adapter_base}
    document = _score(model_or_path, tokenizer, loading, loaded, extra_probes=extra, cache=store, options=options)
    return EvalResult.from_json(document)


def audit(
    base: ModelLike,
    tuned: ModelLike,
    *,
    suite: str | Path | Suite = "quick",
    budget: str | None = None,
    false_alarm: float = 0.05,
    target: str | Path | None = None,
    tokenizer: Any = None,
    limit: int | None = None,
    device: str = "auto",
    dtype: str = "float32",
    adapter_base: str | None = None,
    batch_tokens: int = 4096,
    cache: bool | ResultCache = True,
) -> Audit:
    """What did `tuned` forget of `base`? Both scored on the same items, compared probe by probe.

    Each probe gets before, after, the paired delta with its 95% interval, a p-value and a verdict
    (forgot / kept / improved). With a budget, each budgeted probe is also `over` it (the interval of its
    loss wholly past the limit), `within` it (wholly inside) or `inconclusive`, judged so that the chance
    of calling any probe over when none is stays under `false_alarm`; `status` is the audit's verdict:
    "over" when any probe is over, "within" only when every budgeted probe is shown within, else
    "inconclusive" (never within).

    Args:
        base: the model before fine-tuning (a path or name, or a model in memory; see `evaluate`).
        tuned: the fine-tuned model, or a PEFT adapter (folder or in memory).
        suite: a built-in suite ("quick", "general"), a suite YAML file, or a loaded `Suite`.
        budget: forgetting budget as `forgetless run` takes it, e.g. "2pt,5%,lambada:10%": accuracy points,
            perplexity percent, gold answer log-probability nats, per probe or for every probe of that unit.
        false_alarm: the chance of calling a probe over its limit when every probe is within it.
        target: held-out text of your own task, scored as the probe `target` (what tuning should gain).
        tokenizer: the tokenizer of whichever of the two models is in memory.
        limit: cap every probe at this many items.
        device: for models loaded from paths.
        dtype: for models loaded from paths.
        adapter_base: the base of a PEFT adapter folder that does not name a loadable one.
        batch_tokens: tokens per scoring batch.
        cache: reuse cached probe results (True), recompute them (False), or a `ResultCache` to use.

    Returns:
        The `Audit`; `.to_json()` is `audit.json`, `.write(folder)` writes it with Markdown and HTML.

    Raises:
        ForgetlessError: a bad argument; ConfigError: every problem of the budget at once (an unknown probe,
            a unit that cannot bound the probe's metric), before any model loads.
    """
    if not 0 < false_alarm < 1:
        raise ForgetlessError(f"false_alarm={false_alarm!r} must be between 0 and 1", "use e.g. 0.05")
    loaded, extra, options, store = _prepare(suite, target, limit, batch_tokens, cache)
    probes = [*loaded.probes, *extra]
    limits = _budget(budget, probes)
    loading = {"device": device, "dtype": dtype, "base": adapter_base}
    scoring = {"extra_probes": extra, "cache": store, "options": options}
    before = _score(base, tokenizer, loading, loaded, **scoring)  # one model from disk in memory at a time
    after = _score(tuned, tokenizer, loading, loaded, **scoring)
    document = build_audit(probes, before, after)
    if limits is not None:
        checks = limits.check([Comparison(**c) for c in document["comparisons"]], false_alarm)
        document["guard"] = {
            "budget": str(limits),
            "false_alarm": false_alarm,
            "final": [c.to_dict() for c in checks],
            "status": budget_status(checks),  # within only when every check is shown within
        }
    return Audit.from_json(document)


def _prepare(
    suite: str | Path | Suite, target: str | Path | None, limit: int | None, batch_tokens: int, cache: Any
) -> tuple[Suite, list[Probe], ScoreOptions, ResultCache]:
    """Every argument that needs no model, checked before one loads."""
    if limit is not None and limit < 1:
        raise ForgetlessError(f"limit={limit} must be at least 1", "pass None to use the suite's own sizes")
    if batch_tokens < 1:
        raise ForgetlessError(f"batch_tokens={batch_tokens} must be positive", "use e.g. 4096")
    if isinstance(suite, Suite):
        if limit is not None:
            raise ForgetlessError("limit= applies to a suite loaded here", "pass the suite's name or file with limit")
        loaded = suite
    else:
        loaded = load_suite(str(suite), limit=limit)
    extra = []
    if target is not None:
        if not Path(target).exists():
            raise ForgetlessError(f"target '{target}' does not exist", "pass a text file, folder or JSONL file")
        extra.append(target_probe(str(target)))
    store = cache if isinstance(cache, ResultCache) else ResultCache(reuse=bool(cache))
    return loaded, extra, ScoreOptions(batch_tokens=batch_tokens), store


def _budget(spec: str | None, probes: list[Probe]) -> Budget | None:
    """The parsed budget (None without one); every problem with it at once."""
    if spec is None:
        return None
    budget = Budget.parse(spec)
    if not budget:
        raise ForgetlessError(f"budget '{spec}' has no limit", "write e.g. '2pt,5%', or pass budget=None")
    problems = budget.problems(
        probe_metrics(probes), targets=[p.config.name for p in probes if p.config.role != "general"]
    )
    if problems:
        raise ConfigError(f"budget '{spec}'", problems)
    return budget


def _score(model: ModelLike, tokenizer: Any, loading: dict[str, Any], suite: Suite, **scoring: Any) -> dict[str, Any]:
    """The eval document of one model: loaded from a path and freed after, or scored in memory where it is."""
    if isinstance(model, LoadedModel):
        return evaluate_suite(model, suite, **scoring)
    if isinstance(model, str | Path):
        document = evaluate_suite(load_model(str(model), **loading), suite, **scoring)
        gc.collect()  # the model is unreachable once scored: free it before the next one loads
        return document
    lm = from_memory(model, tokenizer)
    was_training = model.training
    model.eval()  # no dropout while scoring
    try:
        return evaluate_suite(lm, suite, **scoring)
    finally:
        model.train(was_training)
