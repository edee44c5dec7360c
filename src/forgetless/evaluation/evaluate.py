"""Score one model on a suite, probe by probe, reusing cached results."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forgetless import __version__
from forgetless.cache import ResultCache, result_key
from forgetless.evaluation.progress import progress_bar
from forgetless.evaluation.results import EVAL_SCHEMA
from forgetless.models import LoadedModel
from forgetless.probes import Probe, ProbeConfig, ProbeResult, ScoreOptions
from forgetless.probes.perplexity import PerplexityConfig, PerplexityProbe
from forgetless.suites import Suite


def target_probe(path: str, text: str = "{{ text }}") -> Probe:
    """Held-out perplexity on the user's own domain text: what a fine-tune should gain."""
    config = PerplexityConfig(
        name="target", role="target", source=path, text=text, description=f"held-out text: {path}"
    )
    return PerplexityProbe(config, Path.cwd())


def score_probe(lm: LoadedModel, probe: Probe, cache: ResultCache, options: ScoreOptions) -> tuple[ProbeResult, bool]:
    """Score one probe, or return its cached result. Returns (result, came_from_cache)."""
    config: ProbeConfig = probe.config
    prepared = probe.prepare(lm.tokenizer)
    extra = {"max_length": options.max_length}
    key = result_key(lm.fingerprint, config.kind, prepared["material"], lm.device.type, extra)
    items_key = result_key("", config.kind, prepared["material"], "", extra)  # the items, not the model
    cached = cache.get(key)
    if cached is not None:
        return dataclasses.replace(cached, name=config.name, role=config.role, items_key=items_key), True
    with progress_bar(f"{config.name}", total=_work(prepared)) as advance:
        result = probe.score(lm, prepared, dataclasses.replace(options, progress=advance))
    result.cache_key, result.items_key = key, items_key
    cache.put(key, result)
    return result, False


def _work(prepared: dict[str, Any]) -> int:
    for key in ("requests", "texts"):
        if key in prepared:
            return len(prepared[key])
    return 0  # perplexity windows are counted as they are made; the bar then shows progress only


def evaluate(
    lm: LoadedModel,
    suite: Suite,
    *,
    extra_probes: list[Probe] | None = None,
    cache: ResultCache | None = None,
    options: ScoreOptions | None = None,
) -> dict[str, Any]:
    """Run every probe of the suite (and any extra ones) on `lm`; the result is JSON-ready."""
    cache = cache or ResultCache()
    options = options or ScoreOptions()
    start = time.perf_counter()
    probes = [*suite.probes, *(extra_probes or [])]
    results = []
    for probe in probes:
        result, cached = score_probe(lm, probe, cache, options)
        results.append({**result.to_dict(), "cached": cached})
    return {
        "schema": EVAL_SCHEMA,
        "forgetless_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": lm.describe(),
        "suite": {"name": suite.name, "path": str(suite.path)},
        "probes": results,
        # What each probe scored (tokens, templates, settings): equal keys, comparable results.
        "probe_configs": {r["name"]: r["items_key"] for r in results},
        "seconds": time.perf_counter() - start,
    }
