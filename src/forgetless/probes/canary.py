"""Canary prompts: fixed prompts, greedy generations, compared before and after a fine-tune.

On one model the score is the share of prompts whose generation contains every expected substring
(case-insensitive), when prompts say what to expect. Between two models: how many generations are
unchanged, how similar they are (difflib ratio), and the paired change of the expectation rate.
"""

from __future__ import annotations

import difflib
import time
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from forgetless.data.sources import load_records
from forgetless.metrics import accuracy_interval, paired_accuracy_delta
from forgetless.probes.base import PROBES, Comparison, Metric, Probe, ProbeConfig, ProbeResult, ScoreOptions
from forgetless.probes.generate import GenerationRequest, encode_prompt, generate_texts, unchanged
from forgetless.probes.templates import render


class CanaryPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    expect: list[str] = Field(default_factory=list)


class CanaryConfig(ProbeConfig):
    kind: Literal["canary"] = "canary"
    prompts: list[CanaryPrompt | str] = Field(default_factory=list)
    prompt: str = "{{ prompt }}"  # template, when prompts come from `source`
    expect: str | None = None  # template rendering to a list of substrings, with `source`
    max_new_tokens: int = Field(default=32, gt=0)
    chat: bool = False  # wrap each prompt in the tokenizer's chat template

    @model_validator(mode="after")
    def _one_origin(self) -> CanaryConfig:
        if bool(self.prompts) == bool(self.source):
            raise ValueError("give either inline `prompts` or a `source` of prompts")
        return self


@PROBES.register("canary")
class CanaryProbe(Probe):
    config_class = CanaryConfig
    config: CanaryConfig

    def build_prompts(self) -> list[CanaryPrompt]:
        cfg = self.config
        if cfg.prompts:
            prompts = [p if isinstance(p, CanaryPrompt) else CanaryPrompt(prompt=p) for p in cfg.prompts]
            return [prompts[i] for i in self.sample(len(prompts), "inline prompts")]
        records = load_records(cfg.source, self.base_dir, what=f"probe '{cfg.name}'")
        out = []
        for index in self.sample(len(records)):
            where = f"probe '{cfg.name}', item {index}"
            expect = render(cfg.expect, records[index], native=True, where=where) if cfg.expect else []
            expect = [expect] if isinstance(expect, str) else list(expect)
            out.append(
                CanaryPrompt(prompt=render(cfg.prompt, records[index], native=False, where=where), expect=expect)
            )
        return out

    def prepare(self, tokenizer: Any) -> dict[str, Any]:
        prompts = self.build_prompts()
        texts = [p.prompt for p in prompts]
        if self.config.chat:
            texts = [
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True
                )
                for t in texts
            ]
        material = {"texts": texts, "expect": [p.expect for p in prompts], "max_new": self.config.max_new_tokens}
        return {"prompts": prompts, "texts": texts, "material": material}

    def score(self, lm: Any, prepared: dict[str, Any], options: ScoreOptions) -> ProbeResult:
        start = time.perf_counter()
        # Prompts as written (a chat template already holds its special tokens): no BOS added.
        requests = [
            GenerationRequest(encode_prompt(lm.tokenizer, t, add_special_tokens=False), self.config.max_new_tokens)
            for t in prepared["texts"]
        ]
        generations = generate_texts(
            lm, requests, batch_tokens=options.batch_tokens, max_length=options.max_length, progress=options.progress
        )
        prompts: list[CanaryPrompt] = prepared["prompts"]
        hits = [int(all(e.lower() in g.lower() for e in p.expect)) for p, g in zip(prompts, generations, strict=True)]
        metrics = {}
        has_expect = [bool(p.expect) for p in prompts]
        if any(has_expect):
            scored = [h for h, e in zip(hits, has_expect, strict=True) if e]
            mean, stderr, low, high = accuracy_interval(scored)
            metrics["expect_rate"] = Metric(mean, True, stderr, low, high)
        primary = "expect_rate" if metrics else "generations"
        items = {
            "prompt": [p.prompt for p in prompts],
            "generation": generations,
            "hit": hits,
            "has_expect": has_expect,
        }
        return ProbeResult(
            self.config.name,
            "canary",
            self.config.role,
            primary,
            metrics,
            len(prompts),
            time.perf_counter() - start,
            items,
            scored=self.scored(len(prompts)),
        )

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        old, new = before.items["generation"], after.items["generation"]
        similarity = float(
            np.mean([difflib.SequenceMatcher(None, a, b).ratio() for a, b in zip(old, new, strict=True)])
        )
        name, role, n = before.name, before.role, len(old)
        out = [
            unchanged(before, old, new),
            Comparison(
                name, role, "similarity", True, 1.0, similarity, similarity - 1.0, None, None, None, None, n, "info"
            ),
        ]
        mask = np.array(before.items["has_expect"], dtype=bool)
        if mask.any():
            d = paired_accuracy_delta(np.array(before.items["hit"])[mask], np.array(after.items["hit"])[mask])
            out.insert(0, Comparison.paired(before, "expect_rate", True, d))
        return out
