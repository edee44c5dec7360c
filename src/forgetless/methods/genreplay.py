"""Generative replay: rehearse text the base model writes itself, for users without its training data.

Shin et al., "Continual Learning with Deep Generative Replay", NeurIPS 2017; for language models,
self-synthesized rehearsal (Huang et al., ACL 2024) and LAMOL (Sun et al., ICLR 2020). Before the
stage trains, the model as it is generates `samples` continuations of diverse seed prompts (or of
its own BOS token), sampled at `temperature`/`top_p` with a fixed seed. The texts are filtered:

- length: at least `min_words` words;
- degeneration: at least `min_distinct` of their word 3-grams distinct (loops are the usual failure);
- duplicates: the same text after lower-casing and collapsing spaces is kept once;
- the model's own perplexity: the `drop_surprising` most surprising share is dropped (garbled text).

The kept texts (with their prompt, perplexity and settings: provenance) go to
`state_dir/genreplay-stage-N.jsonl`, with a summary (generated, kept, dropped by which filter,
seconds) beside it, and are mixed into the training data like `replay` does with real text.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import torch
from pydantic import Field

from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext
from forgetless.methods.replay import mixed_with
from forgetless.paths import write_json_atomic, write_text_atomic

SEED_PROMPTS = [
    "The history of",
    "In a recent study, scientists",
    "Here is a simple recipe for",
    "Once upon a time,",
    "The main reason why",
    "A short guide to",
    "According to the report,",
    "The city is known for",
    "Question: What is the capital of France?\nAnswer:",
    "In mathematics, a prime number",
    "The committee announced that",
    "My favourite book is",
    "When the train arrived,",
    "The weather today",
    "To install the software,",
    "Dear friends,",
]


class GenReplayConfig(MethodConfig):
    name: str = "genreplay"
    ratio: float = Field(default=0.25, gt=0, lt=1, description="share of training examples that are generated text")
    samples: int = Field(default=128, ge=1, description="texts to generate before filtering")
    prompts: list[str] | None = Field(default=None, description="seed prompts; default: 16 diverse openings")
    max_new_tokens: int = Field(default=96, ge=8)
    temperature: float = Field(default=0.8, gt=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    batch_size: int = Field(default=16, ge=1)
    min_words: int = Field(default=12, ge=0, description="drop texts with fewer words")
    min_distinct: float = Field(default=0.5, ge=0, le=1, description="drop texts whose distinct 3-gram share is lower")
    drop_surprising: float = Field(default=0.1, ge=0, lt=1, description="drop this share with the highest perplexity")


def distinct_trigrams(text: str) -> float:
    """Share of distinct word 3-grams (1.0 for texts too short to have two)."""
    words = text.split()
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return len(set(grams)) / len(grams) if len(grams) > 1 else 1.0


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


@METHODS.register("genreplay")
class GenReplay(Method):
    config_class = GenReplayConfig
    config: GenReplayConfig

    def __init__(self, config: GenReplayConfig) -> None:
        super().__init__(config)
        self._texts: list[str] = []

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        start = time.perf_counter()
        cfg = self.config
        generated = self._generate(model, context)
        ppl = self._perplexities(model, context, [full for _, full, _ in generated])
        records, dropped, seen = [], {"length": 0, "degenerate": 0, "duplicate": 0, "surprising": 0}, set()
        for (prompt, full, continuation), perplexity in zip(generated, ppl, strict=True):
            if len(continuation.split()) < cfg.min_words:
                dropped["length"] += 1
            elif distinct_trigrams(continuation) < cfg.min_distinct:
                dropped["degenerate"] += 1
            elif normalized(full) in seen:
                dropped["duplicate"] += 1
            else:
                seen.add(normalized(full))
                records.append({"text": full, "prompt": prompt, "perplexity": perplexity})
        cut = math.floor(len(records) * cfg.drop_surprising)
        if cut:
            records.sort(key=lambda r: r["perplexity"])
            dropped["surprising"], records = cut, records[:-cut]
        summary = {
            "generated": len(generated),
            "kept": len(records),
            "dropped": dropped,
            "seconds": round(time.perf_counter() - start, 2),
            "settings": cfg.model_dump(mode="json"),
        }
        context.notes[cfg.name] = {k: v for k, v in summary.items() if k != "settings"}
        if context.state_dir is not None:
            stem = context.state_dir / f"genreplay-stage-{context.stage}"
            write_text_atomic(stem.with_suffix(".jsonl"), "".join(json.dumps(r) + "\n" for r in records))
            write_json_atomic(stem.with_suffix(".json"), summary)
        if not records:
            raise ForgetlessError(
                f"genreplay kept none of its {len(generated)} generated texts (dropped: {dropped})",
                "lower min_words or min_distinct, raise samples or max_new_tokens, or check the seed prompts",
            )
        self._texts = [r["text"] for r in records]
        return model

    @torch.no_grad()
    def _generate(self, model: Any, context: TrainContext) -> list[tuple[str, str, str]]:
        """(prompt, prompt + continuation, continuation) for `samples` generations, seeded."""
        cfg, tok = self.config, context.tokenizer
        prompts = cfg.prompts or SEED_PROMPTS
        wanted = [prompts[i % len(prompts)] for i in range(cfg.samples)]
        device = next(model.parameters()).device
        side, was_training = tok.padding_side, model.training
        tok.padding_side = "left"  # generation continues at the right end of every row
        model.eval()
        torch.manual_seed(context.seed + 7919 * context.stage)
        out = []
        try:
            for i in range(0, len(wanted), cfg.batch_size):
                batch = wanted[i : i + cfg.batch_size]
                enc = tok(batch, return_tensors="pt", padding=True).to(device)
                ids = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=cfg.temperature,
                    top_p=cfg.top_p,
                    max_new_tokens=cfg.max_new_tokens,
                    pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                )
                for prompt, row in zip(batch, ids[:, enc["input_ids"].shape[1] :], strict=True):
                    continuation = tok.decode(row, skip_special_tokens=True)
                    out.append((prompt, prompt + continuation, continuation))
        finally:
            tok.padding_side = side
            model.train(was_training)
        return out

    @torch.no_grad()
    def _perplexities(self, model: Any, context: TrainContext, texts: list[str]) -> list[float]:
        """Each text's perplexity under the model that wrote it (one text at a time: exact, no padding)."""
        device = next(model.parameters()).device
        out = []
        for text in texts:
            ids = context.tokenizer.encode(text, return_tensors="pt")[:, : context.max_length].to(device)
            if ids.shape[1] < 2:
                out.append(math.inf)
                continue
            out.append(math.exp(float(model(input_ids=ids, labels=ids).loss)))
        return out

    def training_data(self, dataset: Any, context: TrainContext) -> Any:
        return mixed_with(dataset, self._texts, self.config.ratio, context.seed + context.stage)
