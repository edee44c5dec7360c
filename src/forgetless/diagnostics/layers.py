"""Name a parameter's place in the model: which block (or embeddings, final norm, head) and which module type.

Every diagnostic is reported per layer, so one rule decides where a parameter belongs. It reads the
parameter's name rather than the module tree, which keeps it pure (a string in, a pair out) and lets
a result be grouped again long after the model is gone. The rule, which holds for Hugging Face
decoders (Llama, Mistral, Qwen, GPT-2's `transformer.h.N`, GPT-NeoX) and for a PEFT-wrapped one:

- PEFT's wrappers are dropped: a LoRA tensor `...q_proj.lora_A.default.weight` and the base weight
  `...q_proj.base_layer.weight` both belong to `q_proj`.
- The block is the first all-digit part of the module path (`model.layers.3.mlp.up_proj` -> 3).
- The module type is the owning module's own name, with every normalization layer called `norm`,
  every embedding `embed` and the output projection `head`.
- Outside the blocks, the group is the module type (`embed`, `norm`, `head`) or `other`.
"""

from __future__ import annotations

from collections.abc import Iterable

PEFT_MARKERS = (
    "base_layer",
    "lora_A",
    "lora_B",
    "lora_embedding_A",
    "lora_embedding_B",
    "lora_magnitude_vector",
    "modules_to_save",
    "original_module",
)
HEADS = {"lm_head", "embed_out", "output", "head", "score"}
GROUPS_OUTSIDE = ("embed", "norm", "head", "other")  # groups that are not a block index


def module_path(name: str) -> list[str]:
    """The parts of the module that owns parameter `name`, with PEFT's wrappers and the tensor's own name removed."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part in PEFT_MARKERS:
            return parts[:i]
    return parts[:-1]  # the last part names the tensor (weight, bias, ...)


def module_type(leaf: str) -> str:
    """q_proj, up_proj, ... as they are; any normalization `norm`, any embedding `embed`, the output head `head`."""
    low = leaf.lower()
    if "norm" in low or low.startswith("ln"):
        return "norm"
    if ("embed" in low and low != "embed_out") or low in {"wte", "wpe"}:
        return "embed"
    if low in HEADS:
        return "head"
    return leaf


def layer_of(name: str) -> tuple[str, str]:
    """(group, module type) of a parameter name; group is a block index as a string, or embed/norm/head/other.

    Examples:
        >>> layer_of("model.layers.3.mlp.up_proj.weight")
        ('3', 'up_proj')
        >>> layer_of("base_model.model.model.layers.3.self_attn.q_proj.lora_A.default.weight")
        ('3', 'q_proj')
        >>> layer_of("model.norm.weight"), layer_of("lm_head.weight")
        (('norm', 'norm'), ('head', 'head'))
    """
    path = module_path(name)
    kind = module_type(path[-1]) if path else "other"
    block = next((part for part in path if part.isdigit()), None)
    if block is not None:
        return block, kind
    return (kind if kind in GROUPS_OUTSIDE else "other"), kind


def group_key(group: str) -> tuple[int, int]:
    """Sort key putting groups in depth order: embed, block 0, 1, ..., final norm, head, other."""
    if group.isdigit():
        return (1, int(group))
    return {"embed": (0, 0), "norm": (2, 0), "head": (3, 0)}.get(group, (4, 0))


Cells = dict[tuple[str, str], dict[str, float]]


def tally(values: Iterable[tuple[str, dict[str, float]]]) -> Cells:
    """Sum each parameter's numbers (squared norms, counts...) into its (group, module type) cell."""
    cells: Cells = {}
    for name, numbers in values:
        cell = cells.setdefault(layer_of(name), {})
        for key, value in numbers.items():
            cell[key] = cell.get(key, 0.0) + value
    return dict(sorted(cells.items(), key=lambda item: (group_key(item[0][0]), item[0][1])))


def merge(cells: Cells, by: str) -> Cells:
    """The cells summed over module types (`by="group"`: one per block) or over groups (`by="module"`)."""
    merged: Cells = {}
    for (group, kind), numbers in cells.items():
        key = (group, "") if by == "group" else ("", kind)
        cell = merged.setdefault(key, {})
        for name, value in numbers.items():
            cell[name] = cell.get(name, 0.0) + value
    return merged
