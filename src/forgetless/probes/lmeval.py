"""Any lm-evaluation-harness task as a probe: lm-eval builds the requests, forgetless scores them.

`{kind: lm_eval, task: arc_easy, limit: 500}`; `task` is a task, group or tag name, or the path of a task
YAML (`include_path` adds folders of YAMLs, as lm-eval's `--include_path`). lm-eval's TaskManager builds
the task (its dataset, `process_docs`, `doc_to_text` / `doc_to_choice` / `doc_to_target`, few-shot
settings, `target_delimiter`), and the task's own `fewshot_context` and `construct_requests` make each
document's requests as lm-eval's `build_all_requests` does. forgetless's engine scores them (batched, an
item's shared context run once, cached, paired per item), lm-eval's filters and `process_results` turn
each document's log-likelihoods into its metrics, and lm-eval's aggregations give the values it would
report (lmeval_results.py). Besides lm-eval's metrics:

- multiple_choice: gold_logprob and gold_margin, as the `choice` probe reports them;
- loglikelihood: gold_logprob, the target's log-likelihood in nats (a budget in nats bounds it);
- loglikelihood_rolling: forgetless's token `perplexity` (the default primary; a budget in % bounds it),
  documents scored in windows of `max_length` tokens (default the model's context capped at 2048, where
  lm-eval uses the whole context: set `max_length` to match it on longer documents).

Items are a seeded random sample of `limit` documents of the task's evaluation split (test, else
validation), pooled over a group's tasks: forgetless's sampling, not lm-eval's first `--limit` documents.
Few-shot examples come from lm-eval's sampler seeded with `fewshot_seed` (lm-eval's default 1234).
Offline, hub datasets fail at once; `overrides` (lm-eval task keys, e.g. `dataset_path: json` and
`dataset_kwargs: {data_files: {test: my.jsonl}}`) point a named task at local files. `generate_until` tasks
generate greedily through forgetless's engine (probes/generate.py, settings read as lm-eval's `hf` model reads
them: lmeval_generate.py); each item keeps its generation. A task from outside lm-eval that would run code
needs `trust_code`; its templates render in Jinja's sandbox unless trusted (lmeval_code.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from forgetless.data.offline import offline_unless_reachable
from forgetless.data.sources import select_items
from forgetless.errors import ForgetlessError
from forgetless.metrics import paired_mean_delta
from forgetless.probes.base import PROBES, Comparison, Probe, ProbeConfig, ProbeResult, ScoreOptions
from forgetless.probes.choice import gold_comparisons
from forgetless.probes.lmeval_code import sandboxed_templates
from forgetless.probes.lmeval_generate import generated, refuse_settings
from forgetless.probes.lmeval_requests import (
    LmEvalDoc,
    build_error,
    describe,
    doc_requests,
    request_material,
    set_fewshot,
    tokenized,
)
from forgetless.probes.lmeval_results import aggregation_names, comparison_of, metric_of
from forgetless.probes.lmeval_tasks import SUPPORTED, TaskPlan, common_metrics, manager, plan_task, quiet
from forgetless.probes.perplexity import document_nll, perplexity_comparison, perplexity_metrics
from forgetless.probes.scoring import model_max_length, prefix_token_id
from forgetless.probes.shared_context import grouped_loglikelihoods

EXTRAS = {"multiple_choice": ["gold_logprob", "gold_margin"], "loglikelihood": ["gold_logprob"]}


class LmEvalConfig(ProbeConfig):
    kind: Literal["lm_eval"] = "lm_eval"
    task: str = Field(min_length=1, description="lm-eval task, group or tag name, or a task YAML path")
    include_path: list[str] = Field(default_factory=list, description="folders of task YAMLs, as --include_path")
    num_fewshot: int | None = Field(default=None, ge=0, description="as lm-eval's --num_fewshot; default the task's")
    fewshot_seed: int = Field(default=1234, description="seeds lm-eval's few-shot sampler (its default 1234)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="task config keys to replace, e.g. dataset")
    trust_code: bool = Field(default=False, description="let a task from outside lm-eval run its code")
    primary: str | None = Field(default=None, description="default: acc, or perplexity for loglikelihood_rolling")
    max_length: int | None = Field(default=None, gt=1, description="rolling window in tokens; default model's, capped")

    @field_validator("include_path", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> LmEvalConfig:
        if self.source:
            raise ValueError("an lm_eval probe reads its task's own data: drop `source`, or use `overrides`")
        if "task" in self.overrides or "group" in self.overrides:
            raise ValueError("`overrides` cannot rename the task; set `task` instead")
        return self


@PROBES.register("lm_eval")
class LmEvalProbe(Probe):
    config_class = LmEvalConfig
    config: LmEvalConfig

    def __init__(self, config: LmEvalConfig, base_dir: Any = None) -> None:
        super().__init__(config, base_dir)
        self.plan: TaskPlan = plan_task(config.task, config.include_path, base_dir, config.overrides)
        if self.plan.code and not config.trust_code:
            listing = "; ".join(self.plan.code[:3]) + (" ..." if len(self.plan.code) > 3 else "")
            raise ForgetlessError(
                f"probe '{config.name}': lm-eval task '{config.task}' would run code from outside lm-eval ({listing})",
                "read that code, then set `trust_code: true` on the probe to let lm-eval run it",
            )
        if config.overrides and self.plan.load != self.plan.name:
            raise ForgetlessError(
                f"probe '{config.name}': `overrides` apply to a task named through lm-eval's index",
                "edit the YAML itself, or name the task and give its folder as `include_path`",
            )
        self.output = self.plan.output_types[0]
        offered = [*common_metrics(self.plan), *EXTRAS.get(self.output, [])]
        if self.output == "loglikelihood_rolling":
            offered.insert(0, "perplexity")
        default = next((m for m in ("acc", "perplexity") if m in offered), offered[0] if offered else None)
        if config.primary is None:
            config.primary = default
        elif self.output in SUPPORTED and config.primary not in offered:
            raise ForgetlessError(
                f"probe '{config.name}': primary '{config.primary}' is not reported for '{config.task}'",
                f"use one of {offered}",
            )
        self._docs: list[LmEvalDoc] | None = None
        self._meta: dict[str, Any] = {}

    def _build(self) -> list[LmEvalDoc]:
        """lm-eval builds the task(s) and every sampled document's requests; done once per probe."""
        if self._docs is not None:
            return self._docs
        cfg, plan = self.config, self.plan
        spec: Any = plan.load
        if cfg.overrides:  # lm-eval's own way to override a task: an entry of a group's task list
            spec = {
                "group": "forgetless",
                "task": [{("group" if plan.kind == "group" else "task"): plan.name, **cfg.overrides}],
            }
        with quiet(), self._templates(), offline_unless_reachable() as reachable:
            try:
                tasks = manager(plan.include_path, plan.defaults).load(spec)["tasks"]
            except ForgetlessError:
                raise
            except Exception as error:  # datasets and task code raise anything; each means "could not build"
                raise build_error(cfg.name, cfg.task, error, reachable) from error
            leaves = [(name, tasks[name], list(_eval_docs(tasks[name]))) for name in sorted(tasks)]
        output = leaves[0][1].OUTPUT_TYPE  # a Python task says it only now
        if output not in SUPPORTED or any(output != t.OUTPUT_TYPE for _, t, _ in leaves):
            raise ForgetlessError(
                f"probe '{cfg.name}': lm-eval task '{cfg.task}' has output type(s) "
                f"{sorted({t.OUTPUT_TYPE for _, t, _ in leaves})}, not one of {list(SUPPORTED)}",
                "give a task of one of these output types",
            )
        for name, task, _ in leaves if output == "generate_until" else []:
            refuse_settings(name, task.config.generation_kwargs, cfg.name)
        self.output = output
        pool = [(leaf, i) for leaf in range(len(leaves)) for i in range(len(leaves[leaf][2]))]
        chosen = [pool[i] for i in select_items(len(pool), cfg.limit, cfg.seed)]
        docs = []
        with self._templates():
            for leaf, (_, task, task_docs) in enumerate(leaves):
                set_fewshot(task, cfg.num_fewshot, cfg.fewshot_seed)
                for _, doc_id in (c for c in chosen if c[0] == leaf):
                    docs.append(doc_requests(task, doc_id, task_docs[doc_id]))
        self._docs = docs
        first = leaves[0][1]
        self._meta = {
            "aggregation": aggregation_names(first),
            "higher": dict(first.higher_is_better()),
            "what": describe(plan, leaves, cfg.overrides),
            "total": len(pool),
        }
        return docs

    def _templates(self) -> Any:
        """Templates of YAMLs from outside lm-eval (or of `overrides`) render in Jinja's sandbox unless trusted."""
        what = f"probe '{self.config.name}': lm-eval task '{self.config.task}'"
        return sandboxed_templates(self.plan.external and not self.config.trust_code, what)

    def prepare(self, tokenizer: Any) -> dict[str, Any]:
        import lm_eval

        docs = [tokenized(d, tokenizer, self.output) for d in self._build()]
        per_doc = [
            {
                "doc": hashlib.blake2b(
                    json.dumps([d.task.task_name, d.doc_id, d.doc], sort_keys=True, default=str).encode(),
                    digest_size=16,
                ).hexdigest(),
                "requests": [request_material(r) for r in d.requests],
                "tokens": d.tokens,
                "gold": d.gold,
            }
            for d in docs
        ]
        common = {
            "lm_eval": lm_eval.__version__,
            "task": self.plan.name,
            "overrides": self.config.overrides,
            "window": self.config.max_length,
            "prefix": prefix_token_id(tokenizer),
        }
        requests = [r for d in docs for r in d.requests]
        return {"docs": docs, "requests": requests, "material": {"common": common, "docs": per_doc}}

    def subset(self, prepared: dict[str, Any], indices: list[int]) -> dict[str, Any]:
        docs = [prepared["docs"][i] for i in indices]
        material = prepared["material"]
        return {
            "docs": docs,
            "requests": [r for d in docs for r in d.requests],
            "material": {"common": material["common"], "docs": [material["docs"][i] for i in indices]},
        }

    def score(self, lm: Any, prepared: dict[str, Any], options: ScoreOptions) -> ProbeResult:
        start = time.perf_counter()
        docs: list[LmEvalDoc] = prepared["docs"]
        if self.output == "loglikelihood_rolling":
            nll = document_nll(lm, [d.tokens for d in docs], options, self.config.max_length)
            responses: list[list[Any]] = [[-n] for n in nll]
        elif self.output == "generate_until":
            responses = generated(lm, docs, options)
        else:
            max_length = options.max_length or model_max_length(lm.model)
            groups = [d.requests for d in docs]
            scored = grouped_loglikelihoods(
                lm.model, groups, max_length=max_length, batch_tokens=options.batch_tokens, progress=options.progress
            )
            responses = [[(ll, greedy) for ll, greedy in doc] for doc in scored]
        items = self._items(docs, responses)
        return self.from_items(items, time.perf_counter() - start)

    def _items(self, docs: list[LmEvalDoc], responses: list[list[Any]]) -> dict[str, list[Any]]:
        """Per document: lm-eval's filters and process_results on forgetless's scores, and the raw scores."""
        by_task: dict[int, list[Any]] = {}
        for d, resps in zip(docs, responses, strict=True):
            for instance, resp in zip(d.instances, resps, strict=True):  # lm-eval: one response per repeat
                instance.resps, instance.filtered_resps = [resp] * max(1, instance.repeats), {}
            by_task.setdefault(id(d.task), []).extend(d.instances)
        values, shown = [], []
        with self._templates():
            for d in {id(d.task): d for d in docs}.values():
                d.task._instances = by_task[id(d.task)]
                d.task.apply_filters()
            for d in docs:  # lm-eval's first filter ("none": take the first response); none: the raw responses
                key = next(iter(d.instances[0].filtered_resps), None)
                filtered = [i.filtered_resps[key] if key is not None else i.resps[0] for i in d.instances]
                values.append(d.task.process_results(d.doc, filtered))
                shown.append(filtered[0])
        keep = [m for m, agg in self._meta["aggregation"].items() if agg and all(m in v for v in values)]
        items: dict[str, list[Any]] = {"task": [], "doc_id": [], **{m: [] for m in keep}}
        for d, resps, doc_values, answer in zip(docs, responses, values, shown, strict=True):
            items["task"].append(d.task.task_name)
            items["doc_id"].append(d.doc_id)
            for metric in keep:
                value = doc_values[metric]
                items[metric].append(list(map(float, value)) if isinstance(value, tuple) else float(value))
            if self.output == "multiple_choice":
                items.setdefault("lls", []).append([float(ll) for ll, _ in resps[: d.n_choices]])
                items.setdefault("gold", []).append(d.gold)
            elif self.output == "loglikelihood":
                items.setdefault("ll", []).append(float(resps[0][0]))
            elif self.output == "generate_until":  # the generation, and what the task's filters made of it
                items.setdefault("generation", []).append(resps[0])
                items.setdefault("filtered", []).append(answer if isinstance(answer, str) else str(answer))
            else:
                items.setdefault("nll", []).append(-float(resps[0]))
                items.setdefault("tokens", []).append(float(len(d.tokens)))
                items.setdefault("bytes", []).append(float(len(d.instances[0].args[0].encode("utf-8"))))
        return items

    def from_items(self, items: dict[str, list[Any]], seconds: float) -> ProbeResult:
        self._build()
        metrics = {}
        if self.output == "loglikelihood_rolling":
            nll, tokens, nbytes = (np.array(items[k], dtype=float) for k in ("nll", "tokens", "bytes"))
            metrics["perplexity"] = perplexity_metrics(nll, tokens, nbytes)["perplexity"]
        for metric, aggregation in self._meta["aggregation"].items():
            if aggregation is not None and metric in items:
                metrics[metric] = metric_of(aggregation, items[metric], self._meta["higher"].get(metric, True))
        n, cfg = len(items["doc_id"]), self.config
        primary = cfg.primary if cfg.primary in metrics else next(iter(metrics))
        scored = f"{self._meta['what']}, {n} of {self._meta['total']}"
        return ProbeResult(cfg.name, "lm_eval", cfg.role, primary, metrics, n, seconds, items, scored=scored)

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        self._build()
        out = []
        for metric in [before.primary, *(m for m in before.metrics if m != before.primary)]:
            if metric == "perplexity" and self.output == "loglikelihood_rolling":
                out.append(perplexity_comparison(before, after))
            elif metric in before.items and metric in after.items:
                agg, higher = self._meta["aggregation"][metric], self._meta["higher"].get(metric, True)
                out.append(comparison_of(before, after, metric, agg, higher))
        if self.output == "multiple_choice" and min(before.items["gold"], default=-1) >= 0:
            out += gold_comparisons(before, after)
        if self.output == "loglikelihood":
            d = paired_mean_delta(before.items["ll"], after.items["ll"])
            out.append(Comparison.paired(before, "gold_logprob", True, d, "the target's log-likelihood, nats"))
        return out


def _eval_docs(task: Any) -> Any:
    """The task's evaluation documents: those its constructor already ran `process_docs` on, when it kept them."""
    docs = getattr(task, "task_docs", None)
    return task.eval_docs if docs is None else docs
