"""Find a model's layers by depth: embeddings at the bottom, transformer blocks, the top (norm + head).

Freezing, layer-wise learning rates and gradual unfreezing all need to know which parameters sit
how deep. Instead of a table of attribute names per architecture (`model.layers`, `transformer.h`,
`gpt_neox.layers`...), the blocks are found by shape: the largest `nn.ModuleList` whose entries are
all of one class. That holds for every Hugging Face decoder, for a PEFT-wrapped one (the adapters
live inside the blocks) and for a plain `nn.Module` that keeps its blocks in a ModuleList.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from forgetless.errors import ForgetlessError


@dataclass
class Depths:
    """A model's parameters split by depth; every parameter is in exactly one part.

    A head tied to the input embeddings (`tie_word_embeddings`) is one tensor: it counts as
    embeddings, so freezing the embeddings freezes that head too. An encoder's embedding LayerNorm
    (BERT's `embeddings.LayerNorm`) counts as embeddings; its pooler and classifier are the top.
    """

    embeddings: list[nn.Parameter]
    blocks: list[list[nn.Parameter]]  # one list per block, lowest (nearest the input) first
    top: list[nn.Parameter]  # everything above or beside the blocks: final norm, output head

    def __len__(self) -> int:
        return len(self.blocks)


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's stack of blocks: the largest ModuleList of same-class modules that hold weights.

    Raises:
        ForgetlessError: when the model has no such list.
    """
    best: nn.ModuleList | None = None
    for module in model.modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(m) for m in module}) != 1 or not any(True for _ in module.parameters()):
            continue
        # Longest list wins; among equals (an encoder and a decoder) the one with more weights.
        if best is None or (len(module), _size(module)) > (len(best), _size(best)):
            best = module
    if best is None:
        raise ForgetlessError(
            f"cannot find the transformer blocks of {type(model).__name__}: "
            "it has no nn.ModuleList of same-class modules",
            "keep the model's blocks in an nn.ModuleList (as every Hugging Face model does), or use a method that "
            "does not need layers (full, lora)",
        )
    return best


def find_embeddings(model: nn.Module, blocks: nn.ModuleList | None = None) -> list[nn.Parameter]:
    """Input embeddings: `get_input_embeddings()` where the model has it, plus every nn.Embedding outside
    the blocks (position embeddings such as GPT-2's `wpe` are not returned by get_input_embeddings)."""
    modules: list[nn.Module] = []
    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter):
        try:
            found = getter()
        except NotImplementedError:  # transformers raises this for models without a text embedding
            found = None
        if isinstance(found, nn.Module):
            modules.append(found)
    inside = {id(m) for m in blocks.modules()} if blocks is not None else set()
    modules += [m for m in model.modules() if isinstance(m, nn.Embedding) and id(m) not in inside]
    if blocks is not None:
        modules = [_owner(model, m, blocks) for m in modules]
    return _unique(p for m in modules for p in m.parameters())


def _owner(model: nn.Module, embedding: nn.Module, blocks: nn.ModuleList) -> nn.Module:
    """The largest module around `embedding` that holds no block: BERT's `embeddings` (word, position
    and type embeddings with their LayerNorm), or the embedding itself where its parent holds the blocks
    too (Llama's `embed_tokens`, GPT-2's `wte`)."""
    parents = {id(child): parent for parent in model.modules() for child in parent.children()}
    holding, node = {id(blocks)}, blocks  # the blocks and every module above them
    while id(node) in parents:
        node = parents[id(node)]
        holding.add(id(node))
    owner = embedding
    while id(owner) in parents and id(parents[id(owner)]) not in holding:
        owner = parents[id(owner)]
    return owner


def split_by_depth(model: nn.Module) -> Depths:
    """Every parameter of `model` (trainable or not) assigned to embeddings, one block, or the top."""
    blocks = find_blocks(model)
    embeddings = find_embeddings(model, blocks)
    taken = {id(p) for p in embeddings}
    per_block = []
    for block in blocks:
        params = [p for p in _unique(block.parameters()) if id(p) not in taken]
        taken.update(id(p) for p in params)
        per_block.append(params)
    # named_parameters deduplicates tied tensors, so the head tied to the embeddings is not seen twice.
    top = [p for _, p in model.named_parameters() if id(p) not in taken]
    return Depths(embeddings=embeddings, blocks=per_block, top=top)


def _size(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _unique(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out
