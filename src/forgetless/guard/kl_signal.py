"""KLSignal: how far fine-tuning has moved the model from its base, on the new task's own inputs.

Shenfeld et al. (2025, "RL's Razor", arXiv 2509.04259) find that forgetting tracks the forward KL
divergence from the base model to the tuned one, measured on the new task's inputs: a signal that needs
no old data. This callback measures it at every logging step and logs it as `kl/base` through
`Trainer.log` (beside the loss, so `report_to` integrations see it):

    KL = mean over sequences of (mean over the sequence's positions t of
         sum_v p_base(v | x_<=t) (log p_base(v | x_<=t) - log p_model(v | x_<=t)))

in nats, on a fixed sample of held-out inputs (the first `sample` texts, each cut to `max_length`
tokens). Each sequence weighs the same, so the spread of the per-sequence values gives the KL a
Student-t interval over the sample (`KLMeasure.comparison`: the one-sample t test, the base's value
being 0 by definition); a budget `kl:0.05` is judged on it like any other limit (guard.budget).

The base's log-probabilities are computed once, at train begin, and cached on the CPU:
- the full vocabulary when positions x vocabulary x 4 bytes fit `cache_mb` (64 MB): exact;
- otherwise the base's `top_k` (256) most likely tokens at each position and one bucket for all the
  others: the KL between those coarsened distributions, a lower bound of the full KL (merging outcomes
  never increases a KL divergence). bench/kl_cost.py measures the memory and the gap.
A PEFT model's base is itself with its adapters switched off (`model.disable_adapter()`), never a copy;
a full fine-tune's is the weights at train begin, saved in `state_dir` so that a resumed run reads it back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from forgetless.errors import ForgetlessError
from forgetless.metrics import paired_mean_delta
from forgetless.probes import Comparison, ProbeResult
from forgetless.train.trainer_lookup import move_to_front, tokenizer_of, trainer_of

KL_NAME = "kl"  # the name a budget's `kl:AMOUNT` limit bounds, and the key of its checks
TOP_K = 256


@dataclass
class KLMeasure:
    step: int
    per_sequence: list[float]  # mean KL over each sequence's positions, nats
    seconds: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_sequence))

    def comparison(self) -> Comparison:
        """The KL as a budgeted change: from 0 (the base) to its mean, with the t interval over sequences."""
        n = len(self.per_sequence)
        d = paired_mean_delta(np.zeros(n), np.asarray(self.per_sequence))
        return Comparison.paired(ProbeResult(KL_NAME, "kl", "general", "kl", {}, n, self.seconds), "kl", False, d)

    def interval(self) -> tuple[float | None, float | None]:
        """The 95% t interval of the KL over the sample's sequences."""
        c = self.comparison()
        return (c.low, c.high) if len(self.per_sequence) > 1 else (None, None)


def _is_peft(model: Any) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


class KLSignal(TrainerCallback):
    """Log the forward KL from the base model's next-token distributions on held-out inputs of the new task.

    Args:
        texts: held-out inputs of the task being learned (not trained on); the first `sample` are used.
        sample: how many texts (sequences) are measured.
        max_length: tokens kept of each text.
        top_k: tokens cached per position; None: the full vocabulary; "auto": full when it fits `cache_mb`.
        cache_mb: the memory the full-vocabulary cache may take before "auto" keeps the top 256 tokens.
        batch_size: sequences per forward pass.
        state_dir: where a full fine-tune's base cache is saved, for a resumed run (None: not saved).
        tokenizer: the model's tokenizer (default: the trainer's `processing_class`).
        trainer: the Trainer, when it is at hand; otherwise it is found on the first event.
    """

    def __init__(
        self,
        texts: list[str],
        *,
        sample: int = 32,
        max_length: int = 128,
        top_k: int | str | None = "auto",
        cache_mb: float = 64.0,
        batch_size: int = 8,
        state_dir: str | Path | None = None,
        tokenizer: Any = None,
        trainer: Any = None,
    ) -> None:
        texts = [t for t in texts if isinstance(t, str) and t.strip()][:sample]
        if not texts:
            raise ForgetlessError(
                "KLSignal got no held-out texts of the new task to measure the KL on",
                "give it held-out inputs of the task being learned (e.g. 32 texts kept out of training)",
            )
        if max_length < 2 or batch_size < 1 or not (top_k in (None, "auto") or (isinstance(top_k, int) and top_k > 0)):
            raise ForgetlessError(
                f"KLSignal(max_length={max_length}, batch_size={batch_size}, top_k={top_k!r}) is not usable",
                "use max_length >= 2, batch_size >= 1 and top_k None, 'auto' or a positive number",
            )
        self.texts, self.max_length, self.top_k, self.cache_mb = texts, max_length, top_k, cache_mb
        self.batch_size, self.trainer, self.tokenizer = batch_size, trainer, tokenizer
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.batches: list[dict[str, torch.Tensor]] = []
        self.base: list[tuple[torch.Tensor, ...]] | None = (
            None  # per batch: full log-probs, or (top values, indices, rest)
        )
        self.k: int | None = None  # tokens kept per position (None: all)
        self.latest: KLMeasure | None = None
        self.history: list[list[float | None]] = []  # [step, mean, low, high] at every measure
        self.seconds = 0.0

    @property
    def ready(self) -> bool:
        return self.base is not None

    # -- Trainer events ----------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        trainer = trainer_of(self, self.trainer, "KLSignal")
        self.trainer = trainer
        tokenizer = self.tokenizer or tokenizer_of(trainer, kwargs.get("processing_class"), "KLSignal")
        self.batches = self._tokenize(tokenizer)
        self.base = self._base(model, state.global_step)
        if any(c is self for c in trainer.callback_handler.callbacks):
            move_to_front(trainer, self)  # on_log adds kl/base before report_to integrations see the logs

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        model = kwargs.get("model")
        if logs is None or "loss" not in logs or not self.ready or model is None:
            return  # beside each training-loss line, not the final summary
        logs["kl/base"] = round(self.measure(model, state.global_step).mean, 6)
        if state.log_history and state.log_history[-1].get("loss") == logs["loss"]:
            state.log_history[-1]["kl/base"] = logs["kl/base"]  # Trainer.log stored a copy before calling us

    # -- measuring ---------------------------------------------------------------------------------

    def _tokenize(self, tokenizer: Any) -> list[dict[str, torch.Tensor]]:
        """Right-padded batches, sequences in the order given (per-sequence values keep it)."""
        ids = [tokenizer(t, add_special_tokens=True)["input_ids"][: self.max_length] for t in self.texts]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        batches = []
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start : start + self.batch_size]
            width = max(len(x) for x in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, x in enumerate(chunk):
                input_ids[row, : len(x)], mask[row, : len(x)] = torch.tensor(x), 1
            batches.append({"input_ids": input_ids, "attention_mask": mask})
        return batches

    @torch.no_grad()
    def _log_probs(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(positions, vocab) float32 log-probabilities at every real (unpadded) position, row by row."""
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in batch.items()}
        logits = model(**inputs, use_cache=False).logits  # (B, T, V)
        return torch.log_softmax(logits.float(), dim=-1)[inputs["attention_mask"].bool()]

    def _base(self, model: Any, step: int) -> list[tuple[torch.Tensor, ...]]:
        saved = self.state_dir / "kl_base.pt" if self.state_dir is not None else None
        if not _is_peft(model) and step > 0:
            if saved is None or not saved.is_file():
                raise ForgetlessError(
                    f"training resumes at step {step}, but the KL signal's base cache was not saved (state_dir "
                    f"{self.state_dir}); the checkpoint's weights are not the base",
                    "give KLSignal the state_dir it started with, or train from the start",
                )
            cache = torch.load(saved, weights_only=True)
            self.k = cache["k"]
            return [tuple(part) for part in cache["base"]]
        positions = sum(int(b["attention_mask"].sum()) for b in self.batches)
        vocab = int(model.get_output_embeddings().weight.shape[0])
        full_mb = positions * vocab * 4 / 2**20
        if self.top_k == "auto":
            self.k = None if full_mb <= self.cache_mb else min(TOP_K, vocab)
        else:
            self.k = None if self.top_k is None else min(int(self.top_k), vocab)
        was_training = model.training
        model.eval()
        try:
            if _is_peft(model):
                with model.disable_adapter():
                    base = [self._keep(self._log_probs(model, b)) for b in self.batches]
            else:
                base = [self._keep(self._log_probs(model, b)) for b in self.batches]
        finally:
            model.train(was_training)
        if saved is not None and not _is_peft(model):
            saved.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"k": self.k, "base": [list(part) for part in base]}, saved)
        return base

    def _keep(self, logp: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.k is None:
            return (logp.cpu(),)
        values, indices = logp.topk(self.k, dim=-1)
        return values.cpu(), indices.to(torch.int32).cpu(), _rest(values).cpu()

    def cache_bytes(self) -> int:
        """The memory the base's cache holds."""
        return sum(t.numel() * t.element_size() for part in self.base or [] for t in part)

    def measure(self, model: Any, step: int) -> KLMeasure:
        """The KL from the base at these weights (once per step: a second call at the same step reuses it)."""
        if self.latest is not None and self.latest.step == step:
            return self.latest
        if self.base is None:
            raise ForgetlessError("KLSignal has no base cache yet: training has not begun", "call trainer.train()")
        start = time.perf_counter()
        was_training = model.training
        model.eval()
        values: list[float] = []
        try:
            for batch, base in zip(self.batches, self.base, strict=True):
                current = self._log_probs(model, batch).cpu()
                per_position = _kl(base, current)
                lengths = batch["attention_mask"].sum(dim=1).tolist()
                values += [float(chunk.mean()) for chunk in per_position.split(lengths)]
        finally:
            model.train(was_training)
        seconds = time.perf_counter() - start
        self.seconds += seconds
        self.latest = KLMeasure(step, values, seconds)
        low, high = self.latest.interval()
        self.history.append([step, self.latest.mean, low, high])
        return self.latest

    def report(self) -> dict[str, Any]:
        """What the watch keeps of the signal: its history and what it costs."""
        return {
            "sequences": len(self.texts),
            "max_length": self.max_length,
            "top_k": self.k,
            "cache_bytes": self.cache_bytes(),
            "history": self.history,  # [step, KL, low, high] (95% t interval over the sequences)
            "seconds": self.seconds,
        }


def _rest(values: torch.Tensor) -> torch.Tensor:
    """log(1 - sum(exp(values))) along the last axis: the log-probability of every other token."""
    total = torch.logsumexp(values, dim=-1).clamp(max=-1e-7)
    return torch.log(-torch.expm1(total))


def _kl(base: tuple[torch.Tensor, ...], current: torch.Tensor) -> torch.Tensor:
    """KL(base || current) at each position: exact over the vocabulary, or over top-k tokens and one bucket."""
    if len(base) == 1:
        (lb,) = base
        return (lb.exp() * (lb - current)).sum(dim=-1)
    values, indices, rest = base
    picked = current.gather(-1, indices.long())
    rest_current = _rest(picked)
    top = (values.exp() * (values - picked)).sum(dim=-1)
    return top + rest.exp() * (rest - rest_current)
