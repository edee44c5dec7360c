"""Block expansion: new capacity for the new task, the base weights frozen and untouched.

Progressive networks (Rusu et al., 2016) grow a new column per task and freeze the old ones; for
decoder-only transformers the practical form is block expansion (Wu et al., "LLaMA Pro: Progressive
LLaMA with Block Expansion", ACL 2024). The N blocks are split into `blocks` equal groups and a copy
of each group's last block is inserted after it, with its two output projections (attention's
o_proj and the MLP's down_proj) set to zero. A pre-norm residual block whose outputs are zero adds
nothing, so the expanded model computes exactly what the base computed; only the inserted blocks
train, so the base weights never change. Every stage inserts new blocks and freezes all earlier
ones, including blocks added by earlier stages.

The base model's own outputs stay recoverable exactly: the inserted blocks' indices are written into
the model config (`forgetless_expanded`), and `drop_expansion` removes them again.

What it does not promise: that the expanded model itself keeps the old task. The new blocks sit in
every input's path, so on the tests' tiny setup (a model trained on an old task, 40 steps on a new
one) the expanded model's old-task loss rose more than plain fine-tuning's (2.85 against 1.77
nats/token) while it learned the new task less (5.9 against 9.4 nats). Like progressive networks,
it keeps the old ability intact next to the new one; serving both needs the task to choose the model
(base for the old, expanded for the new). LLaMA Pro also mixes general data into the expansion's
training, which `replay` adds here: with replay at ratio 0.5 the same setup's old-task loss fell
(-0.27 nats), at the same 5.9 nats of gain; replay alone did as well on the old task with more gain
(-0.30, 9.4), so on a model this small the new blocks add capacity, not retention.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import Field

from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext

OUTPUT_PROJECTIONS = (("self_attn", "o_proj"), ("mlp", "down_proj"))


class ExpandConfig(MethodConfig):
    name: str = "expand"
    blocks: int = Field(default=2, gt=0, description="new blocks per stage, one after each of this many equal groups")


def decoder_layers(model: Any) -> torch.nn.ModuleList:
    """The list of transformer blocks of a decoder-only model, or a clear error."""
    inner = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or not all(_expandable(layer) for layer in layers):
        raise ForgetlessError(
            f"expand cannot expand {type(model).__name__}: it needs a decoder with `layers`, each block with "
            "self_attn.o_proj and mlp.down_proj (Llama, Mistral, Qwen2, SmolLM2 ...)",
            "use another method (lora, freeze) for this architecture",
        )
    return layers


def _expandable(layer: torch.nn.Module) -> bool:
    return all(isinstance(getattr(getattr(layer, a, None), b, None), torch.nn.Linear) for a, b in OUTPUT_PROJECTIONS)


def _replace(layers: torch.nn.ModuleList, new: list[torch.nn.Module]) -> None:
    """Change the blocks in place: the model keeps its own ModuleList object (no slice assignment on it)."""
    while len(layers):
        del layers[len(layers) - 1]
    layers.extend(new)


def _renumber(layers: torch.nn.ModuleList, config: Any) -> None:
    # Attention uses its layer_idx to find its slot in the KV cache: keep it equal to the position.
    for index, layer in enumerate(layers):
        if hasattr(layer.self_attn, "layer_idx"):
            layer.self_attn.layer_idx = index
        if hasattr(layer, "layer_idx"):
            layer.layer_idx = index
    config.num_hidden_layers = len(layers)


@METHODS.register("expand")
class Expand(Method):
    config_class = ExpandConfig
    config: ExpandConfig

    def validate(self, others: list[str]) -> list[str]:
        clashes = [o for o in others if o in ("lora", "freeze", "unfreeze")]
        return (
            [f"expand chooses what trains (the new blocks only); it cannot be combined with {clashes}"]
            if clashes
            else []
        )

    @torch.no_grad()
    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        layers = decoder_layers(model)
        n = len(layers)
        if self.config.blocks > n:
            raise ForgetlessError(
                f"expand: {self.config.blocks} new blocks asked for, but the model has only {n} blocks to follow",
                f"set blocks to at most {n}",
            )
        after = {round((g + 1) * n / self.config.blocks) - 1 for g in range(self.config.blocks)}
        for p in model.parameters():
            p.requires_grad_(False)  # the base, and blocks earlier stages added, stay as they are
        grown, added = [], []
        for index, layer in enumerate(layers):
            grown.append(layer)
            if index in after:
                block = copy.deepcopy(layer)
                for owner, name in OUTPUT_PROJECTIONS:
                    projection = getattr(getattr(block, owner), name)
                    projection.weight.zero_()
                    if projection.bias is not None:
                        projection.bias.zero_()
                for p in block.parameters():
                    p.requires_grad_(True)
                added.append(len(grown))
                grown.append(block)
        previous = dict(getattr(model.config, "forgetless_expanded", None) or {})
        base_layers = previous.get("base_layers", n)
        # Indices of all inserted blocks in the grown list: earlier stages' shift past this stage's inserts.
        earlier = [sum(1 for a in after if a < i) + i for i in previous.get("added", [])]
        _replace(layers, grown)
        _renumber(layers, model.config)
        model.config.forgetless_expanded = {"base_layers": base_layers, "added": sorted([*earlier, *added])}
        return model


@torch.no_grad()
def drop_expansion(model: Any) -> Any:
    """Remove every block `expand` inserted: the model computes exactly what its base did."""
    info = getattr(model.config, "forgetless_expanded", None)
    if not info:
        raise ForgetlessError("this model was not expanded by forgetless (no forgetless_expanded in its config)")
    layers = decoder_layers(model)
    added = set(info["added"])
    _replace(layers, [layer for i, layer in enumerate(layers) if i not in added])
    _renumber(layers, model.config)
    model.config.forgetless_expanded = None
    return model
