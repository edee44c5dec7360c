"""A tiny module with hand-set weights, whose drift, Fisher and gradients can be worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2, bias=False)


class Toy(nn.Module):
    """embed (4 x 2, ones) -> two blocks (fc = identity) -> head (4 x 2, twos). Names: embed.weight,
    blocks.0.fc.weight, blocks.1.fc.weight, head.weight."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 2)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(2, 4, bias=False)
        with torch.no_grad():
            self.embed.weight.fill_(1.0)
            for block in self.blocks:
                block.fc.weight.copy_(torch.eye(2))
            self.head.weight.fill_(2.0)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(input_ids)
        for block in self.blocks:
            h = block.fc(h)
        return self.head(h)


class ToyLM(Toy):
    """The toy with a loss, called like a Hugging Face model: `model(input_ids=...).loss`."""

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:  # type: ignore[override]
        return SimpleNamespace(loss=super().forward(input_ids).square().mean())
