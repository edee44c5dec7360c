"""EWC: pull each weight back in proportion to how much the kept data depends on it.

Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks", PNAS 2017. The loss
gains (lam / 2) * sum_i F_i (theta_i - theta*_i)^2, F the diagonal Fisher information estimated on
`context.keep_texts` at theta*, the weights when the stage starts. Across stages it is online EWC
(Schwarz et al., "Progress & Compress", ICML 2018): stage k uses F = F_k + gamma * F_(k-1), the
previous stage's combined Fisher, anchored again at the weights stage k starts from.

The Fisher, per text (one at a time, truncated to `context.max_length`), is the squared gradient of
that text's mean next-token loss, averaged over `fisher_samples` texts. `fisher="empirical"` scores
the true next tokens; `fisher="sampled"` scores tokens drawn from the model's own predictions, which
is the true Fisher, one Monte Carlo draw per position (Kunstner et al., NeurIPS 2019, on why the two
differ). For a model that is not a language model (a classifier on a plain nn.Module),
`context.keep_batches` gives (inputs, targets) batches instead and the Fisher is the squared
gradient of each batch's mean cross-entropy, averaged over batches (`fisher_from_batches`); for an
encoder whose head is new, `output="embedding"` takes the Fisher of its sentence embedding instead.
`normalize="mean"` divides F so its mean over all entries is 1 (before online combining): raw Fisher
values scale with model size, vocabulary and text length, while mean-normalized EWC at strength lam
is L2-SP at alpha = lam with the same total pull, re-distributed by importance.

On the default lam = 0.1, ten times L2-SP's alpha: the Fisher is heavy-tailed. On SmolLM2-135M
(mean-normalized) its median entry is 0.03, its 99th percentile 2.3, and the top 1% of entries hold
90% of the mass, so at lam = alpha most weights would be held ~30 times more loosely than by L2-SP.
With lam = 0.1 the top ~10% of weights (F > 0.2) get at least L2-SP's default pull; in the tests'
tiny forgetting setup EWC needed about 10x L2-SP's alpha for similar retention, with more gain.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from forgetless.errors import ForgetlessError
from forgetless.methods.anchors import (
    add_distance_grad,
    checked,
    follow_devices,
    snapshot,
    weighted_squared_distance,
)
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext, trainable
from forgetless.methods.embedding_fisher import embedding_fisher_loss


class EWCConfig(MethodConfig):
    name: str = "ewc"
    lam: float = Field(
        default=0.1, gt=0, description="strength lambda: the loss gains (lam/2) * sum F (theta - theta*)^2"
    )
    fisher: Literal["empirical", "sampled"] = Field(
        default="empirical", description="empirical: gradients on the true next tokens; sampled: on model-drawn tokens"
    )
    fisher_samples: int = Field(
        default=64, ge=1, description="kept texts (or keep_batches) the Fisher is averaged over (at most all)"
    )
    normalize: Literal["none", "mean", "max"] = Field(
        default="mean", description="divide F so its mean (or max) entry is 1, making lam comparable across models"
    )
    online: bool = Field(default=True, description="carry the Fisher into later stages (online EWC)")
    gamma: float = Field(default=1.0, gt=0, le=1, description="decay of the carried Fisher: F = F_new + gamma * F_old")
    output: Literal["logits", "embedding"] = Field(
        default="logits",
        description="with keep_batches: the Fisher of the logits (a trained head), or of the mean-pooled "
        "embedding (an encoder whose head is new; see methods.embedding_fisher)",
    )


def _logits(outputs: Any) -> torch.Tensor:
    return getattr(outputs, "logits", outputs)  # a HF model's output, or a plain module's logits


def fisher_loss(kind: str, seed: int, logits: Callable[[Any], torch.Tensor] = _logits) -> Callable[..., torch.Tensor]:
    """The loss whose squared gradient is the Fisher: cross-entropy of `logits(outputs)` (N, C) against
    the true targets ("empirical") or against classes drawn from the model's own softmax ("sampled",
    from a generator seeded with `seed` on the logits' device at first use, so the draws repeat)."""
    generator: torch.Generator | None = None

    def loss(outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        nonlocal generator
        scores = logits(outputs).float()
        if kind == "sampled":
            if generator is None:
                generator = torch.Generator(device=scores.device).manual_seed(seed)
            probs = torch.softmax(scores.detach(), dim=-1)
            targets = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        return F.cross_entropy(scores, targets.to(scores.device))

    return loss


@torch.enable_grad()
def fisher_from_batches(
    model: Any,
    named: list[tuple[str, torch.Tensor]],
    batches: Iterable[tuple[Any, torch.Tensor]],
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of the `named` parameters: the mean over `batches` of the squared gradient of
    `loss_fn(model(inputs), targets)`, computed with the model in eval mode (no dropout).

    A batch of one example gives the per-example Fisher; a batch of B gives the squared gradient of
    the batch's mean loss, as Avalanche's EWC plugin estimates it (smaller: the per-example gradients
    partly cancel). Works on any module: `inputs` is a tensor (`model(inputs)`) or a mapping of
    keyword arguments (`model(**inputs)`, a Hugging Face model).

    Args:
        model: the model, returning logits or an output `loss_fn` understands.
        named: the (name, parameter) pairs to estimate F for (the trainable ones).
        batches: (inputs, targets) pairs, on the model's input device.
        loss_fn: maps (outputs, targets) to a scalar loss; see `fisher_loss`.

    Returns:
        F by parameter name, float32, on each parameter's device.

    Raises:
        ValueError: if `batches` is empty.
    """
    params = [p for _, p in named]
    fisher = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    was_training = model.training
    model.eval()  # no dropout: the Fisher is a property of the model, not of a random mask
    counted = 0
    try:
        for inputs, targets in batches:
            outputs = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
            # autograd.grad, not backward: the parameters' .grad stay untouched for the training loop.
            grads = torch.autograd.grad(loss_fn(outputs, targets), params, allow_unused=True)
            used = [(f, g) for f, g in zip(fisher, grads, strict=True) if g is not None]  # unused weights: F = 0
            grads32 = [g.float() for _, g in used]
            torch._foreach_addcmul_([f for f, _ in used], grads32, grads32)
            counted += 1
    finally:
        model.train(was_training)
    if counted == 0:
        raise ValueError("no batches to estimate the Fisher on")
    torch._foreach_div_(fisher, counted)
    return {name: f for (name, _), f in zip(named, fisher, strict=True)}


def estimate_fisher(
    model: Any, named: list[tuple[str, torch.Tensor]], context: TrainContext, kind: str, samples: int
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of a language model on kept texts, each text scored on its own (its mean
    next-token loss): `fisher_from_batches` with one text per batch.

    Args:
        model: called as `model(input_ids=ids)`, returning logits or an output with `.logits`.
        named: the (name, parameter) pairs to estimate F for (the trainable ones).
        context: gives the tokenizer, the kept texts, `max_length` and the seed for sampled labels.
        kind: "empirical" (true next tokens) or "sampled" (tokens drawn from the model).
        samples: how many of the first kept texts to average over.

    Returns:
        F by parameter name, float32, on each parameter's device.
    """
    device = next(model.parameters()).device  # the input side (embeddings) of a model split across devices
    encoded = [
        context.tokenizer.encode(t, truncation=True, max_length=context.max_length)
        for t in context.keep_texts[:samples]
    ]
    batches = [
        ({"input_ids": torch.tensor([ids], device=device)}, torch.tensor(ids[1:], device=device))
        for ids in encoded
        if len(ids) >= 2  # a text of one token has nothing to predict
    ]
    if not batches:
        raise ForgetlessError(
            "ewc could not estimate the Fisher: every kept text is shorter than two tokens",
            "give longer texts in `keep` (general text the model must keep)",
        )
    next_token = fisher_loss(kind, context.seed + context.stage, lambda out: _logits(out)[0, :-1])  # (T-1, V)
    return fisher_from_batches(model, named, batches, next_token)


def normalized(fisher: dict[str, torch.Tensor], how: str) -> dict[str, torch.Tensor]:
    """F divided by its mean (or max) entry, so that statistic becomes 1; unchanged for "none"."""
    if how == "none":
        return fisher
    values = list(fisher.values())
    if how == "mean":  # entries are >= 0, so each tensor's L1 norm is its sum
        scale = torch.stack(torch._foreach_norm(values, 1)).sum() / sum(v.numel() for v in values)
    else:
        scale = torch.stack(torch._foreach_norm(values, float("inf"))).max()
    if not float(scale) > 0:
        raise ForgetlessError(
            "ewc's Fisher is zero everywhere: the kept texts give no gradient to the trainable weights",
            "check that `keep` holds real text and that the trainable parameters are used by the model",
        )
    return dict(zip(fisher, torch._foreach_div(values, scale), strict=True))


def fisher_path(state_dir: Path, stage: int) -> Path:
    """Where stage `stage`'s Fisher is kept, so a resumed run reads it instead of estimating it again."""
    return Path(state_dir) / f"ewc_fisher_stage{stage}.safetensors"


def save_fisher(path: Path, fisher: dict[str, torch.Tensor], tag: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")  # write then rename: a crash never leaves half a file
    save_file({n: f.detach().contiguous().cpu() for n, f in fisher.items()}, str(partial), metadata=tag)
    os.replace(partial, path)


def load_fisher(path: Path, shapes: dict[str, tuple[int, ...]], tag: dict[str, str]) -> dict[str, torch.Tensor] | None:
    """The saved Fisher if it was made under the same settings for parameters of these shapes, else None."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as handle:
        if handle.metadata() != tag:
            return None
        fisher = {n: handle.get_tensor(n) for n in handle.keys() if n in shapes}  # noqa: SIM118
    if any(tuple(f.shape) != shapes[n] for n, f in fisher.items()):
        return None
    return fisher


@METHODS.register("ewc")
class EWC(Method):
    """(lam / 2) * sum_i F_i (theta_i - theta*_i)^2 (Kirkpatrick et al., PNAS 2017), online across stages."""

    config_class = EWCConfig
    config: EWCConfig

    def __init__(self, config: EWCConfig) -> None:
        super().__init__(config)
        self.fisher: dict[str, torch.Tensor] = {}  # the F the penalty uses this stage, by parameter name
        self.fisher_seconds = 0.0  # time spent estimating it (0 when read back from state_dir)
        self._carried: dict[str, torch.Tensor] | None = None  # online EWC: last stage's F
        self._params: list[torch.Tensor] = []
        self._anchors: list[torch.Tensor] = []
        self._weights: list[torch.Tensor] = []

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        named = trainable(model)
        if not named:
            raise ForgetlessError(
                "ewc found no trainable parameters to anchor (every parameter has requires_grad=False)",
                "list ewc after the methods that choose what trains (lora, freezing), or drop ewc",
            )
        shapes = {n: tuple(p.shape) for n, p in named}
        tag = self._tag(context)
        fisher = load_fisher(fisher_path(context.state_dir, context.stage), shapes, tag) if context.state_dir else None
        if fisher is not None and set(fisher) != set(shapes):
            fisher = None  # made for another set of trainable parameters
        if fisher is None:
            start = time.perf_counter()
            fisher = self._combined(
                normalized(self._estimate(model, named, context), self.config.normalize), context, tag
            )
            if torch.cuda.is_available():
                torch.cuda.synchronize()  # the kernels above run asynchronously: time them whole
            self.fisher_seconds = time.perf_counter() - start
            if context.state_dir:
                save_fisher(fisher_path(context.state_dir, context.stage), fisher, tag)
        self.fisher = fisher
        self._params = [p for _, p in named]
        self._anchors = snapshot(self._params, torch.float32)  # theta*: re-anchored every stage
        self._weights = [fisher[n].to(p.device) for n, p in named]
        return model

    def _estimate(
        self, model: Any, named: list[tuple[str, torch.Tensor]], context: TrainContext
    ) -> dict[str, torch.Tensor]:
        if context.keep_batches:  # not a language model: (inputs, targets) batches, cross-entropy on the logits
            batches = context.keep_batches[: self.config.fisher_samples]
            loss = fisher_loss(self.config.fisher, context.seed + context.stage)
            if self.config.output == "embedding":
                batches = [({**inputs, "output_hidden_states": True}, y) for inputs, y in batches]
                loss = embedding_fisher_loss(context.seed + context.stage)
            return fisher_from_batches(model, named, batches, loss)
        if self.config.output == "embedding":
            raise ForgetlessError(
                "ewc: output 'embedding' is the Fisher of an encoder's embedding, and needs keep_batches",
                "use forgetless classify with `keep:` data, or output: logits for a language model",
            )
        if not context.keep_texts:
            raise ForgetlessError(
                "ewc needs data of what must be kept to estimate the Fisher, but context.keep_texts is empty",
                "set `keep` in the config (general text the model must keep), or drop the ewc method",
            )
        samples = min(self.config.fisher_samples, len(context.keep_texts))
        return estimate_fisher(model, named, context, self.config.fisher, samples)

    def _tag(self, context: TrainContext) -> dict[str, str]:
        # What a saved Fisher depends on: a file made under other settings or data is not reused.
        keys = ("fisher", "fisher_samples", "normalize", "online", "gamma", "output")
        digest = hashlib.blake2b(digest_size=8)
        if context.keep_batches:
            for inputs, targets in context.keep_batches[: self.config.fisher_samples]:
                for t in [*(inputs.values() if isinstance(inputs, Mapping) else [inputs]), targets]:
                    digest.update(t.detach().cpu().numpy().tobytes())
        else:
            digest.update("\x00".join(context.keep_texts[: self.config.fisher_samples]).encode())
        keep = digest.hexdigest()
        return {**{k: str(getattr(self.config, k)) for k in keys}, "keep": keep, "max_length": str(context.max_length)}

    def _combined(
        self, new: dict[str, torch.Tensor], context: TrainContext, tag: dict[str, str]
    ) -> dict[str, torch.Tensor]:
        if not self.config.online:
            return new
        old = self._carried
        if old is None and context.state_dir and context.stage > 0:  # a resumed run: last stage's file
            old = load_fisher(
                fisher_path(context.state_dir, context.stage - 1), {n: tuple(f.shape) for n, f in new.items()}, tag
            )
        if not old:
            return new
        # Weights trained in both stages add up; ones trainable only now start from their own F.
        return {n: f + self.config.gamma * old[n].to(f.device) if n in old else f for n, f in new.items()}

    def penalty(self, model: Any, inputs: dict[str, torch.Tensor], outputs: Any) -> torch.Tensor:
        self._ready("penalty")
        distance = weighted_squared_distance(self._params, self._anchors, self._weights)
        return checked(0.5 * self.config.lam * distance, "ewc")

    def add_penalty_grad(self, scale: float) -> torch.Tensor:
        self._ready("add_penalty_grad")  # d/dtheta (lam/2) sum F (theta - theta*)^2 = lam F (theta - theta*)
        distance = add_distance_grad(self._params, self._anchors, self._weights, self.config.lam * scale)
        return checked(0.5 * self.config.lam * distance, "ewc")

    def _ready(self, hook: str) -> None:
        if not self._params:
            raise RuntimeError(f"ewc.{hook} was called before ewc.prepare_model estimated the Fisher")
        follow_devices(self._anchors, self._params)
        follow_devices(self._weights, self._params)

    def end_stage(self, model: Any, context: TrainContext) -> None:
        # Online EWC carries this stage's F; the next prepare_model re-anchors at the weights it is
        # given (the end of this stage, after any `finish`), so no copy of theta* is kept meanwhile.
        self._carried = self.fisher if self.config.online else None
        self._params, self._anchors, self._weights = [], [], []
