"""The Fisher of an encoder's sentence embedding, for EWC on an encoder whose head is new.

A fresh classification head is random, so the Fisher of its logits says little about what the
encoder knows. What must be kept is the embedding itself: model it as a unit-variance Gaussian
around the mean-pooled last hidden state f(x), y ~ N(f(x), I). Its Fisher is E_x[J(x)^T J(x)], J the
Jacobian of f; the squared gradient of eps . f(x) with eps ~ N(0, I) has exactly that diagonal as
its expectation, one Monte Carlo draw per example (as EWC's "sampled" Fisher draws one label).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def embedding_fisher_loss(seed: int) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    """A `fisher_from_batches` loss: eps . f(x), f the mean of the last hidden states over the tokens.

    The outputs must carry `hidden_states` (call the model with `output_hidden_states=True`), and a
    batch must be unpadded (EWC's keep batches hold one example each): the mean is over every position.
    The targets are ignored. `eps` comes from a generator seeded with `seed`, so estimates repeat.
    """
    generator: torch.Generator | None = None

    def loss(outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        nonlocal generator
        pooled = outputs.hidden_states[-1].float().mean(dim=1)  # (B, H)
        if generator is None:
            generator = torch.Generator(device=pooled.device).manual_seed(seed)
        eps = torch.randn(pooled.shape, generator=generator, device=pooled.device)
        return (eps * pooled).sum(dim=-1).mean()

    return loss
