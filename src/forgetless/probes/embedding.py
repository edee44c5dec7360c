"""Embedding quality: do cosine similarities of sentence embeddings still rank pairs as people do?

The semantic-similarity evaluation of sentence encoders (STS in SentEval, Conneau & Kiela, 2018;
Sentence-BERT, Reimers & Gurevych, 2019): each pair's two texts are embedded on their own (mean-pooled
last hidden states, `probes.features`) and compared by cosine. `spearman` (primary) is the rank
correlation between the cosines and the gold score (a similarity rating, or 0/1 "paraphrase or
not" as in MRPC); `recall_at_1` asks, for each pair whose gold score is at least `positive`, whether
its second text is the most similar of all second texts in the probe (retrieval). Before and after
are paired: a bootstrap over pairs for Spearman, McNemar's test for the per-query hits.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from forgetless.data.sources import load_records
from forgetless.errors import ForgetlessError
from forgetless.metrics import (
    accuracy_interval,
    paired_accuracy_delta,
    paired_spearman_delta,
    retrieval_hits,
    spearman,
    spearman_interval,
)
from forgetless.metrics.paired_tests import BOOTSTRAP_DRAWS, data_seed
from forgetless.probes.base import PROBES, Comparison, Metric, Probe, ProbeConfig, ProbeResult, ScoreOptions
from forgetless.probes.features import encode, sentence_features
from forgetless.probes.templates import render


class EmbeddingConfig(ProbeConfig):
    kind: Literal["embedding"] = "embedding"
    text: str = Field("{{ sentence1 }}", description="template of a pair's first text")
    text_pair: str = Field("{{ sentence2 }}", description="template of a pair's second text")
    score: str = Field("{{ label }}", description="template of the gold similarity (any scale, or 0/1)")
    positive: float = Field(0.5, description="pairs with gold score >= this are retrieval queries")
    max_length: int = Field(128, gt=1, description="tokens per text")
    pooling: Literal["mean", "cls"] = Field("mean", description="mean of the last hidden states, or [CLS]'s")
    primary: Literal["spearman", "recall_at_1"] = "spearman"

    @model_validator(mode="after")
    def _needs_source(self) -> EmbeddingConfig:
        if not self.source:
            raise ValueError("an embedding probe needs `source` (pairs with a gold similarity)")
        return self


def cosines(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, H) arrays; a zero row has similarity 0."""
    norms = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
    return np.divide((u * v).sum(axis=1), norms, out=np.zeros(len(u)), where=norms > 0)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


@PROBES.register("embedding")
class EmbeddingProbe(Probe):
    config_class = EmbeddingConfig
    config: EmbeddingConfig

    def prepare(self, tokenizer: Any) -> dict[str, Any]:
        cfg = self.config
        records = load_records(cfg.source, self.base_dir, what=f"probe '{cfg.name}'")
        firsts, seconds, gold = [], [], []
        for index in self.sample(len(records)):
            record, where = records[index], f"probe '{cfg.name}', item {index}"
            firsts.append(str(render(cfg.text, record, native=False, where=where)))
            seconds.append(str(render(cfg.text_pair, record, native=False, where=where)))
            value = render(cfg.score, record, native=True, where=where)
            try:
                gold.append(float(value))
            except (TypeError, ValueError) as error:
                raise ForgetlessError(
                    f"{where}: score template {cfg.score!r} gave {value!r}, not a number", "make `score` a number"
                ) from error
        if len(gold) < 3 or len(set(gold)) < 2:
            raise ForgetlessError(
                f"probe '{cfg.name}': Spearman needs at least 3 pairs with two different gold scores",
                "point `source` at more pairs",
            )
        # Queries first: query i's partner is candidate i, every other second text a distractor.
        queries = [i for i, g in enumerate(gold) if g >= cfg.positive]
        order = queries + [i for i in range(len(gold)) if gold[i] < cfg.positive]
        inputs = [encode(tokenizer, firsts, None, cfg.max_length), encode(tokenizer, seconds, None, cfg.max_length)]
        material = {"inputs": inputs, "gold": gold, "order": order, "queries": len(queries), "pooling": cfg.pooling}
        texts = firsts + seconds  # sizes the progress bar: one per encoding
        return {
            "inputs": inputs,
            "gold": gold,
            "order": order,
            "queries": len(queries),
            "texts": texts,
            "material": material,
        }

    def score(self, lm: Any, prepared: dict[str, Any], options: ScoreOptions) -> ProbeResult:
        start = time.perf_counter()
        pooling, batch = self.config.pooling, options.batch_tokens
        u, v = (sentence_features(lm, e, batch, options.progress, pooling) for e in prepared["inputs"])
        gold, cos = np.asarray(prepared["gold"]), cosines(u, v)
        low, high = spearman_interval(gold, cos)
        rho = spearman(gold, cos)
        metrics = {"spearman": Metric(rho, True, None, low, high)}
        items: dict[str, list[Any]] = {"cosine": cos.tolist(), "gold": gold.tolist(), "hit": []}
        n_queries = prepared["queries"]
        if n_queries:
            order = prepared["order"]
            similarity = _unit(u[order[:n_queries]]) @ _unit(v[order]).T  # (Q, N): partner on the diagonal
            hits = retrieval_hits(similarity, k=1).tolist()
            mean, stderr, r_low, r_high = accuracy_interval(hits)
            metrics["recall_at_1"] = Metric(mean, True, stderr, r_low, r_high)
            items["hit"] = hits
        return ProbeResult(
            self.config.name,
            "embedding",
            self.config.role,
            self.config.primary if self.config.primary in metrics else "spearman",
            metrics,
            len(gold),
            time.perf_counter() - start,
            items,
            scored=self.scored(len(gold)),
        )

    def compare(self, before: ProbeResult, after: ProbeResult) -> list[Comparison]:
        gold, cos_b, cos_a = before.items["gold"], before.items["cosine"], after.items["cosine"]
        seed = data_seed(gold, cos_b, cos_a)  # the one paired_spearman_delta draws from, recorded in the note
        rho = paired_spearman_delta(gold, cos_b, cos_a, seed=seed)
        note = f"cosine similarity vs gold, paired percentile bootstrap ({BOOTSTRAP_DRAWS:,} resamples, seed {seed})"
        out = [Comparison.paired(before, "spearman", True, rho, note)]
        if before.items["hit"] and after.items["hit"]:
            d = paired_accuracy_delta(before.items["hit"], after.items["hit"])
            out.append(Comparison.paired(before, "recall_at_1", True, d, "retrieval among all second texts"))
        if before.primary == "recall_at_1":
            out.reverse()
        return out
