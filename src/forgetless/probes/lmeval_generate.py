"""`generate_until` tasks for the `lm_eval` probe: lm-eval's generation settings, forgetless's generation engine.

lm-eval's `hf` model reads each request's `generation_kwargs` through `normalize_gen_kwargs` (until,
max_gen_toks with its default 256, do_sample/temperature) and generates greedily, batched and cut at the
stop strings (probes/generate.py does the same). The task's filters and `process_results` then turn each
generation into its metrics (exact_match...), as for the other output types (lmeval.py).

forgetless scores greedy generations only, so two models are compared on deterministic outputs: a task
that samples (`do_sample: true`, a temperature above 0) or passes other settings to `generate` is refused
before a model loads, with the override that makes it greedy.
"""

from __future__ import annotations

from typing import Any

from forgetless.errors import ForgetlessError
from forgetless.probes.base import ScoreOptions
from forgetless.probes.generate import GenerationRequest, encode_prompt, generate_texts

DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's HFLM max_gen_toks
# Settings greedy decoding ignores (lm-eval passes them on; greedy generate does not read them).
GREEDY_IGNORES = {"temperature", "top_p", "top_k"}


def settings_problem(task: str, kwargs: dict[str, Any] | None) -> str | None:
    """Why a task's `generation_kwargs` are not greedy generation forgetless can run, or None."""
    kwargs = dict(kwargs or {})
    sampled = kwargs.get("do_sample") is True or (
        kwargs.get("do_sample") is None and float(kwargs.get("temperature") or 0.0) > 0.0
    )
    if sampled:
        return f"lm-eval task '{task}' samples its generations ({_shown(kwargs)})"
    known = {"until", "do_sample", "max_gen_toks", "max_new_tokens", "max_tokens", "max_completion_tokens"}
    other = sorted(set(kwargs) - known - GREEDY_IGNORES)
    if other:
        return f"lm-eval task '{task}' passes {other} to generation, which forgetless's greedy generation does not take"
    return None


def refuse_settings(task: str, kwargs: dict[str, Any] | None, probe: str | None = None) -> None:
    problem = settings_problem(task, kwargs)
    if problem is not None:
        where = f"probe '{probe}': " if probe else ""
        raise ForgetlessError(
            f"{where}{problem}; forgetless compares greedy generations only",
            "make it greedy with the probe's `overrides: {generation_kwargs: {until: [...], do_sample: false}}`",
        )


def generation_request(tokenizer: Any, context: str, gen_kwargs: dict[str, Any]) -> GenerationRequest:
    """One generate_until instance's request, its settings read as lm-eval's hf model reads them."""
    from lm_eval.models.utils import normalize_gen_kwargs

    kwargs = normalize_gen_kwargs(gen_kwargs, DEFAULT_MAX_GEN_TOKS)
    until = kwargs.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    # A context that starts with BOS already gets no second one (lm-eval's has_bos_prefix).
    bos = getattr(tokenizer, "bos_token", None)
    special = not (isinstance(bos, str) and bos and context.startswith(bos))
    return GenerationRequest(encode_prompt(tokenizer, context, special), int(kwargs["max_gen_toks"]), tuple(until))


def generated(lm: Any, docs: list[Any], options: ScoreOptions) -> list[list[str]]:
    """Each document's generations (one per request), in one batched call of the engine."""
    texts = iter(
        generate_texts(
            lm,
            [r for d in docs for r in d.requests],
            batch_tokens=options.batch_tokens,
            max_length=options.max_length,
            progress=options.progress,
        )
    )
    return [[next(texts) for _ in d.requests] for d in docs]


def _shown(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {kwargs[k]}" for k in ("do_sample", "temperature") if k in kwargs)
