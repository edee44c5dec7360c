"""Perplexity and bits per byte of held-out text: the first thing to move when a model forgets.

Each document is scored in full: the first token is predicted from the tokenizer's prefix token
(BOS, else EOS) as lm-eval's `loglikelihood_rolling` does. Documents longer than the window are
scored in windows; each window predicts `stride` new tokens with the tokens before them as context
(`stride` = window: disjoint windows, as lm-eval does; smaller: more context, slower). The window
is the model's context length capped at 2048 tokens to bound memory, where lm-eval uses the full
context length (8192 for SmolLM2): documents longer than 2048 tokens then score slightly
differently (measured: 6530.7 vs 6521.3 nats on a 3,037-token file). Set `max_length` to match.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from forgetless.data.sources import load_records
from forgetless.errors import ForgetlessError
from forgetless.metrics import degradation_interval, log_ratio_interval, paired_perplexity_delta
from forgetless.probes.base import PROBES, Comparison, Metric, Probe, ProbeConfig, ProbeResult, ScoreOptions
from forgetless.probes.scoring import Request, loglikelihoods, model_max_length, prefix_token_id
from forgetless.probes.templates import render


class PerplexityConfig(ProbeConfig):
    kind: Literal["perplexity"] = "perplexity"
    text: str = "{{ text }}"
    max_length: int | None = Field(default=None, gt=1)
    stride: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> PerplexityConfig:
        if not self.source:
            raise ValueError("a perplexity probe needs `source`")
        if self.stride and self.max_length and self.stride > self.max_length:
            raise ValueError(f"stride {self.stride} must be <= max_length {self.max_length}")
        return self


def rolling_requests(tokens: list[int], prefix: int, window: int, stride: int) -> list[Request]:
    """Split one document into requests that together score every token exactly once."""
    seq = [prefix, *tokens]
    requests, done = [], 1  # seq[done:] are the targets not yet scored
    while done < len(seq):
        end = min(len(seq), done + (window if done == 1 else stride))
        begin = max(0, end - 1 - window)  # input is seq[begin:end-1], at most `window` tokens
        requests.append(Request(tuple(seq[begin:done]), tuple(seq[done:end])))
        done = end
    return requests


@PROBES.register("perplexity")
class PerplexityProbe(Probe):
    config_class = PerplexityConfig
    config: PerplexityConfig

    def prepare(self, tokenizer: Any) -> dict[str, Any]:
        cfg = self.config
        records = load_records(cfg.source, self.base_dir, what=f"probe '{cfg.name}'")
        texts = []
        for index in self.sample(len(records)):
            text = render(cfg.text, records[index], native=False, where=f"probe '{cfg.name}', item {index}")
            if text.strip():
                texts.append(text)
        if not texts:
            raise ForgetlessError(f"probe '{cfg.name}': every document is empty", "check `text` and the data")
        docs = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
        material = {"docs": docs, "prefix": prefix_token_id(tokenizer), "window": cfg.max_length, "stride": cfg.stride}
        return {"docs": docs, "bytes": [len(t.encode("utf-8")) for t in texts], "material": material}

    def score(self, lm: Any, prepared: dict[str, Any], options: ScoreOptions) -> ProbeResult:
        start = time.perf_counter()
        nll = document_nll(lm, prepared["docs"], options, self.config.max_length, self.config.stride)
        tokens = [float(len(d)) for d in prepared["docs"]]
        items = {"nll": nll, "tokens": tokens, "bytes": [float(b) for b in prepared["bytes"]]}
        return self.from_items(items, time.perf_counter() - start)

    def subset(self, prepared: dict[str, Any], indices: list[int]) -> dict[str, Any]:
        docs = [prepared["docs"][i] for i in indices]
        return {
            "docs": docs,
            "bytes": [prepared["bytes"][i] for i in indices],
            "material": {**prepared["material"], "docs": docs},
        }

    def from_items(self, items: dict[str, list[Any]], seconds: float) -> ProbeResult:
        nll, tokens, nbytes = (np.array(items[key], dtype=float) for key in ("nll", "tokens", "bytes"))
        cfg = self.config
        return ProbeResult(
            cfg.name,
            "perplexity",
            cfg.role,
            "perplexity",
            perplexity_metrics(nll, tokens, nbytes),
            len(nll),
            seconds,
            items,
            scored=self.scored(len(nll)),
        )

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        ppl = perplexity_comparison(before, after)
        bpb = before.metrics["bits_per_byte"], after.metrics["bits_per_byte"]
        bpb_cmp = Comparison(
            before.name,
            before.role,
            "bits_per_byte",
            False,
            bpb[0].value,
            bpb[1].value,
            bpb[1].value - bpb[0].value,
            bpb[1].value / bpb[0].value - 1,
            None,
            None,
            None,
            ppl.n,
            "info",
        )
        return [ppl, bpb_cmp]


def document_nll(
    lm: Any, docs: list[list[int]], options: ScoreOptions, max_length: int | None = None, stride: int | None = None
) -> list[float]:
    """Each document's summed negative log-likelihood in nats, every token scored once from the prefix
    token on (`rolling_requests`), in windows of `max_length` (default: the model's, capped) tokens."""
    window = max_length or options.max_length or model_max_length(lm.model)
    prefix = prefix_token_id(lm.tokenizer)
    requests, owner = [], []
    for doc_index, tokens in enumerate(docs):
        for request in rolling_requests(tokens, prefix, window, stride or window):
            requests.append(request)
            owner.append(doc_index)
    scored = loglikelihoods(
        lm.model, requests, max_length=window, batch_tokens=options.batch_tokens, progress=options.progress
    )
    nll = np.zeros(len(docs))
    for doc_index, (ll, _) in zip(owner, scored, strict=True):
        nll[doc_index] -= ll
    return nll.tolist()


def perplexity_comparison(
    before: ProbeResult, after: ProbeResult, metric: str = "perplexity", counts: str = "tokens"
) -> Comparison:
    """The paired change of a corpus perplexity exp(sum(nll) / sum(counts)) over the results' documents
    (`items["nll"]`, and `items[counts]`: tokens for perplexity, words for a word perplexity)."""
    nll_b, nll_a = np.array(before.items["nll"]), np.array(after.items["nll"])
    if before.items[counts] != after.items[counts]:
        raise ForgetlessError(
            f"probe '{before.name}': the two results "
            + ("tokenized the text" if counts == "tokens" else f"counted the {counts} of the text")
            + " differently",
            "perplexity is comparable only with the same tokenizer; compare bits_per_byte instead",
        )
    weights = np.array(before.items[counts])
    d = paired_perplexity_delta(nll_b, nll_a, weights)
    deg_low, deg_high = degradation_interval(nll_b, nll_a, weights)
    note = f"{metric} degradation {d.relative:+.1%} (95% CI {deg_low:+.1%} to {deg_high:+.1%})"
    return Comparison.paired(before, metric, False, d, note)


def perplexity_metrics(nll: np.ndarray, tokens: np.ndarray, nbytes: np.ndarray) -> dict[str, Metric]:
    """Corpus perplexity and bits per byte, each a ratio of sums over documents with a t interval
    (delta method) on the log scale for perplexity and on its own scale for bits per byte."""
    log_ppl, log_se, low, high = log_ratio_interval(nll, tokens)
    bpb, bpb_se, bpb_low, bpb_high = log_ratio_interval(nll / np.log(2), nbytes)
    ppl = math.exp(log_ppl)
    if low is None or high is None or bpb_low is None or bpb_high is None:
        return {"perplexity": Metric(ppl, False), "bits_per_byte": Metric(bpb, False)}
    return {
        "perplexity": Metric(ppl, False, ppl * log_se, math.exp(low), math.exp(high)),
        "bits_per_byte": Metric(bpb, False, bpb_se, bpb_low, bpb_high),
    }
