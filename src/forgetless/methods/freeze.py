"""Freezing: chosen parameters get `requires_grad=False` and keep their base values exactly.

The oldest transfer-learning guard against forgetting: features in the lower layers are general and
those near the output specific, so the lower layers can be kept as they are (Yosinski et al., 2014,
"How transferable are features in deep neural networks?"; Howard & Ruder, 2018, ULMFiT, train only
the head first). Three choices:

- `embeddings`: the input (and position) embeddings only. A head tied to them freezes with them.
- `first_n`: the embeddings and the lowest `n` transformer blocks.
- `all_but_head`: everything below the top: only the final norm and the output head train. On an
  encoder classifier (BERT) only the head trains: its pooler and classifier, the classic linear probe
  with the pooler's dense layer (the embedding LayerNorm counts as embeddings, see `blocks.Depths`).

Frozen parameters are left out of the optimizer (Trainer builds it from trainable ones only), so
they cost no optimizer memory and stay bit-identical.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from forgetless.errors import ForgetlessError
from forgetless.methods.base import METHODS, Method, MethodConfig, TrainContext
from forgetless.methods.blocks import find_embeddings, split_by_depth


class FreezeConfig(MethodConfig):
    name: str = "freeze"
    part: Literal["embeddings", "first_n", "all_but_head"] = Field(description="which parameters to freeze")
    n: int | None = Field(None, gt=0, description="with part 'first_n': how many blocks, from the input up")

    @model_validator(mode="after")
    def _n_goes_with_first_n(self) -> FreezeConfig:
        if self.part == "first_n" and self.n is None:
            raise ValueError("n is required when part is 'first_n': say how many blocks to freeze, e.g. n: 2")
        if self.part != "first_n" and self.n is not None:
            raise ValueError(f"n is used only with part 'first_n', not '{self.part}': drop n or set part: first_n")
        return self


@METHODS.register("freeze")
class Freeze(Method):
    """Sets `requires_grad=False` on the chosen part before training (see the module docstring)."""

    config_class = FreezeConfig
    config: FreezeConfig

    def prepare_model(self, model: Any, context: TrainContext) -> Any:
        cfg = self.config
        if cfg.part == "embeddings":
            # Only the embeddings are needed: a model without a block list can still freeze them.
            frozen = find_embeddings(model)
            if not frozen:
                raise ForgetlessError(
                    f"freeze: found no embeddings in {type(model).__name__}",
                    "give the model get_input_embeddings() or an nn.Embedding, or choose another part",
                )
        else:
            depths = split_by_depth(model)
            if cfg.part == "first_n":
                if cfg.n is not None and cfg.n >= len(depths):
                    raise ForgetlessError(
                        f"freeze: n is {cfg.n} but the model has {len(depths)} blocks: "
                        "freezing every block leaves nothing to train but the head",
                        f"use n below {len(depths)}, or part: all_but_head to train the head alone",
                    )
                frozen = depths.embeddings + [p for block in depths.blocks[: cfg.n] for p in block]
            else:
                frozen = depths.embeddings + [p for block in depths.blocks for p in block]
        chosen = {id(p) for p in frozen}
        if not any(p.requires_grad and id(p) not in chosen for p in model.parameters()):
            # Checked before touching the model. Reached when an earlier method (LoRA) already froze
            # what this one would leave trainable.
            raise ForgetlessError(
                f"freeze: part '{cfg.part}' leaves no trainable parameter in {type(model).__name__}",
                "freeze less, or check the methods listed before freeze (LoRA trains only adapters in the blocks)",
            )
        for p in frozen:
            p.requires_grad_(False)
        return model
