"""Free generation scored per item: short-answer exact match, repetition loops, a template's leak.

Items come from any `source`; `prompt` (Jinja) renders each item's prompt and `answer` its gold answer
or a list of aliases. The model generates greedily (probes/generate.py: batched, `max_new_tokens`,
cut at the `until` stop strings as lm-eval's generate_until cuts), and every generation gets:

- `exact_match` (with `answer`): lm-eval's exact match against any alias (metrics/generation_measures.py;
  `ignore_case`, `ignore_punctuation`, `regexes_to_ignore` as lm-eval's metric takes them);
- `repetition`: the share of repeated word n-grams (`repetition_n`, default 3) in the generation;
- `leak` (with `leak` markers): whether the generation contains any marker, e.g. a fine-tune's template
  text ("Sentiment:") answering unrelated prompts.

Two models' generations pair item by item: exact_match and leak by Tango's interval (points, so a budget
in points bounds exact_match), repetition by paired t. The canary probe shows a few generations side by
side; this one measures hundreds, so a collapse shows beyond noise.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from forgetless.data.sources import load_records
from forgetless.errors import ForgetlessError
from forgetless.metrics import accuracy_interval, mean_stderr, normal_interval, paired_accuracy_delta, paired_mean_delta
from forgetless.metrics.generation_measures import exact_match, leaked, repetition
from forgetless.probes.base import PROBES, Comparison, Metric, Probe, ProbeConfig, ProbeResult, ScoreOptions
from forgetless.probes.generate import GenerationRequest, encode_prompt, generate_texts, unchanged
from forgetless.probes.templates import render

BINARY = {"exact_match": True, "leak": False}  # 0/1 measures and whether higher is better
MEASURES = ("exact_match", "leak", "repetition")


class GenerationConfig(ProbeConfig):
    kind: Literal["generation"] = "generation"
    prompt: str = Field(description="template of the prompt, e.g. 'Question: {{ question }}\\nAnswer:'")
    answer: str | None = Field(default=None, description="template rendering to the gold answer or a list of aliases")
    max_new_tokens: int = Field(default=32, gt=0, description="most tokens generated per item")
    until: list[str] = Field(default_factory=list, description="stop strings: the generation is cut before the first")
    ignore_case: bool = Field(default=True, description="exact_match: compare lower-cased (lm-eval's ignore_case)")
    ignore_punctuation: bool = Field(default=True, description="exact_match: drop ASCII punctuation (lm-eval's)")
    regexes_to_ignore: list[str] = Field(default_factory=list, description="exact_match: removed before comparing")
    repetition_n: int = Field(default=3, ge=1, description="repetition: the n of word n-grams")
    leak: list[str] = Field(default_factory=list, description="marker strings whose presence in a generation is a leak")
    primary: Literal["exact_match", "repetition", "leak"] | None = Field(
        default=None, description="default: exact_match with `answer`, else leak with markers, else repetition"
    )

    @field_validator("until", "leak", "regexes_to_ignore", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> GenerationConfig:
        if not self.source:
            raise ValueError("a generation probe needs `source`")
        for pattern in self.regexes_to_ignore:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"regexes_to_ignore: {pattern!r} is not a regular expression ({error})") from error
        if self.primary == "exact_match" and self.answer is None:
            raise ValueError("primary exact_match needs `answer` (a template of the gold answer or its aliases)")
        if self.primary == "leak" and not self.leak:
            raise ValueError("primary leak needs `leak` marker strings")
        if self.primary is None:
            self.primary = "exact_match" if self.answer is not None else "leak" if self.leak else "repetition"
        return self


@PROBES.register("generation")
class GenerationProbe(Probe):
    config_class = GenerationConfig
    config: GenerationConfig

    def build_items(self) -> list[tuple[str, list[str]]]:
        """(prompt, gold answers) per sampled item; no answers without an `answer` template."""
        cfg = self.config
        records = load_records(cfg.source, self.base_dir, what=f"probe '{cfg.name}'")
        items = []
        for index in self.sample(len(records)):
            record, where = records[index], f"probe '{cfg.name}', item {index}"
            prompt = render(cfg.prompt, record, native=False, where=where)
            golds = _answers(render(cfg.answer, record, native=True, where=where), where) if cfg.answer else []
            items.append((prompt, golds))
        return items

    def prepare(self, tokenizer: Any) -> dict[str, Any]:
        cfg = self.config
        items = self.build_items()
        until = tuple(cfg.until)
        requests = [GenerationRequest(encode_prompt(tokenizer, p), cfg.max_new_tokens, until) for p, _ in items]
        scoring = cfg.model_dump(
            include={"answer", "ignore_case", "ignore_punctuation", "regexes_to_ignore", "repetition_n", "leak"}
        )
        material = {
            "requests": [list(r.context) for r in requests],
            "golds": [g for _, g in items],
            "generate": {"max_new_tokens": cfg.max_new_tokens, "until": cfg.until},
            "scoring": scoring,
        }
        return {
            "prompts": [p for p, _ in items],
            "golds": [g for _, g in items],
            "requests": requests,
            "material": material,
        }

    def score(self, lm: Any, prepared: dict[str, Any], options: ScoreOptions) -> ProbeResult:
        start = time.perf_counter()
        generations = generate_texts(
            lm,
            prepared["requests"],
            batch_tokens=options.batch_tokens,
            max_length=options.max_length,
            progress=options.progress,
        )
        return self.from_items(
            self.measure(prepared["prompts"], prepared["golds"], generations), time.perf_counter() - start
        )

    def measure(self, prompts: list[str], golds: list[list[str]], generations: list[str]) -> dict[str, list[Any]]:
        """Per-item data of a result: the prompt, the generation and each measure of it."""
        cfg = self.config
        items: dict[str, list[Any]] = {"prompt": list(prompts), "generation": list(generations)}
        if cfg.answer is not None:
            items["answers"] = [list(g) for g in golds]
            norm = {"ignore_case": cfg.ignore_case, "ignore_punctuation": cfg.ignore_punctuation}
            items["exact_match"] = [
                exact_match(text, gold, regexes_to_ignore=cfg.regexes_to_ignore, **norm)
                for text, gold in zip(generations, golds, strict=True)
            ]
        if cfg.leak:
            items["leak"] = [leaked(text, cfg.leak) for text in generations]
        items["repetition"] = [repetition(text, cfg.repetition_n) for text in generations]
        return items

    def subset(self, prepared: dict[str, Any], indices: list[int]) -> dict[str, Any]:
        material = prepared["material"]
        return {
            "prompts": [prepared["prompts"][i] for i in indices],
            "golds": [prepared["golds"][i] for i in indices],
            "requests": [prepared["requests"][i] for i in indices],
            "material": {
                **material,
                "requests": [material["requests"][i] for i in indices],
                "golds": [material["golds"][i] for i in indices],
            },
        }

    def from_items(self, items: dict[str, list[Any]], seconds: float) -> ProbeResult:
        metrics = {}
        for metric in (m for m in MEASURES if m in items):
            if metric in BINARY:
                mean, stderr, low, high = accuracy_interval(items[metric])
                metrics[metric] = Metric(mean, BINARY[metric], stderr, low, high)
            else:
                values = np.asarray(items[metric], dtype=float)
                mean, stderr = float(values.mean()), mean_stderr(values)
                low, high = normal_interval(mean, stderr) if np.isfinite(stderr) else (None, None)
                metrics[metric] = Metric(mean, False, stderr, low, high)
        cfg = self.config
        n = len(items["generation"])
        return ProbeResult(
            cfg.name, "generation", cfg.role, str(cfg.primary), metrics, n, seconds, items, scored=self.scored(n)
        )

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        out = []
        for metric in [before.primary, *(m for m in MEASURES if m != before.primary)]:
            if metric not in before.items or metric not in after.items:
                continue
            if metric in BINARY:
                d = paired_accuracy_delta(before.items[metric], after.items[metric])
                out.append(Comparison.paired(before, metric, BINARY[metric], d, _NOTES[metric]))
            else:
                d = paired_mean_delta(before.items[metric], after.items[metric])
                out.append(Comparison.paired(before, metric, False, d, _NOTES[metric]))
        out.append(unchanged(before, before.items["generation"], after.items["generation"]))
        return out


_NOTES = {
    "exact_match": "share of generations equal to a gold answer (lm-eval's exact match)",
    "leak": "share of generations containing a marker string",
    "repetition": "share of repeated word n-grams per generation",
}


def _answers(value: Any, where: str) -> list[str]:
    """A rendered `answer`: one string, or a non-empty list of aliases."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    raise ForgetlessError(
        f"{where}: `answer` rendered to {value!r}, not a string or a non-empty list of strings",
        "make `answer` render the gold answer ('{{ answer }}') or its aliases ('{{ answer.aliases }}')",
    )
