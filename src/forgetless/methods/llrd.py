"""Layer-wise learning-rate decay: the deeper (nearer the input) a layer, the smaller its step.

Discriminative fine-tuning (Howard & Ruder, 2018, "Universal Language Model Fine-tuning for Text
Classification", ULMFiT) gives each layer its own learning rate, lower for the general features near
the input; ELECTRA (Clark et al., 2020) fine-tunes with the geometric form used here. With L blocks
numbered 0 (lowest) to L-1 and base rate lr:

    top (final norm, output head)   lr
    block i                         lr * decay ** (L - i)
    embeddings                      lr * decay ** (L + 1)

so the top block moves at lr * decay and the embeddings least. Only trainable parameters are
grouped, so LLRD composes with freezing and with LoRA (the adapters inherit their block's rate).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, Method, MethodConfig
from forgetless.methods.blocks import split_by_depth


class LlrdConfig(MethodConfig):
    name: str = "llrd"
    decay: float = Field(0.8, gt=0, le=1, description="learning-rate factor per block down from the top; 1 is no decay")


def depth_rates(num_blocks: int, learning_rate: float, decay: float) -> dict[str, float]:
    """The learning rate of each depth: 'top', 'block.0' (lowest) ... 'block.{L-1}', 'embeddings'.

    Example: 2 blocks, lr 1.0, decay 0.5 -> top 1.0, block.1 0.5, block.0 0.25, embeddings 0.125.
    """
    rates = {"top": learning_rate}
    rates.update({f"block.{i}": learning_rate * decay ** (num_blocks - i) for i in range(num_blocks)})
    rates["embeddings"] = learning_rate * decay ** (num_blocks + 1)
    return rates


@METHODS.register("llrd")
class Llrd(Method):
    """Optimizer parameter groups with geometrically decaying learning rates (see the module docstring).

    The groups set only `params` and `lr` (plus a `name` for logs); `weight_decay` and the other
    optimizer settings come from the optimizer's keyword arguments.
    """

    config_class = LlrdConfig
    config: LlrdConfig

    def parameter_groups(self, model: Any, learning_rate: float) -> list[dict[str, Any]] | None:
        depths = split_by_depth(model)
        rates = depth_rates(len(depths), learning_rate, self.config.decay)
        parts = {"top": depths.top, "embeddings": depths.embeddings}
        parts.update({f"block.{i}": params for i, params in enumerate(depths.blocks)})
        groups = []
        for name, params in parts.items():
            live = [p for p in params if p.requires_grad]
            if live:  # a frozen depth gets no group: an empty group only confuses schedulers and logs
                groups.append({"params": live, "lr": rates[name], "name": f"llrd/{name}"})
        if not groups:
            raise ForgetlessError(
                f"llrd: {type(model).__name__} has no trainable parameter to group",
                "check the methods listed before llrd: one of them froze everything",
            )
        return groups
