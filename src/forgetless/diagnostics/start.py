"""theta_0 for the drift diagnostic: the weights a stage started from, kept as cheaply as possible.

Only parameters that can move need a starting value: those trainable when training is about to
begin (freezing and LoRA have already set `requires_grad=False` on the rest; gradual unfreezing
freezes its layers later, so they are still counted). LoRA's own tensors need none at all: the
drift of an adapted weight is its merged update, which is zero at the start (see drift.py).

Two ways to get the others, chosen when the stage starts:

- `files`: the stage's starting weights are already on disk as safetensors (the model folder the
  run loaded, or the previous stage's saved model). Nothing is copied; at the end each tensor is read
  back one at a time, so the extra memory is one tensor. Taken only when every tracked name is in
  the files with its shape and two tensors (the smallest, and the first matrix) match the live
  weights exactly, cast to the parameter's dtype as the loader cast them.
- `snapshot`: a copy of the tracked parameters in host memory (CPU), in their own dtype (a bf16
  copy of fp32 weights would round away the drift being measured). For SmolLM2-135M under full
  fine-tuning that is 513 MiB of RAM.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from forgetless.diagnostics.layers import PEFT_MARKERS

LORA_PARTS = tuple(m for m in PEFT_MARKERS if m.startswith("lora_"))


def tracked(model: Any) -> list[tuple[str, torch.Tensor]]:
    """The parameters that need a theta_0: trainable now, and not a LoRA adapter's own tensor."""
    return [
        (n, p) for n, p in model.named_parameters() if p.requires_grad and not any(f".{m}." in n for m in LORA_PARTS)
    ]


def _file_index(folder: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it, for a model folder written by save_pretrained."""
    from safetensors import safe_open

    index = {}
    for path in sorted(folder.glob("model*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            index.update(dict.fromkeys(handle.keys(), path))
    return index


class StartWeights:
    """The starting value of every tracked parameter, from the stage's files or from a snapshot."""

    def __init__(self, names: list[str], index: dict[str, Path] | None, copies: dict[str, torch.Tensor]) -> None:
        self.names = names
        self.index = index  # set in `files` mode
        self.copies = copies  # set in `snapshot` mode
        self.mode = "files" if index is not None else "snapshot"
        self.bytes = sum(t.numel() * t.element_size() for t in copies.values())

    @classmethod
    def take(cls, model: Any, folder: Path | None = None) -> StartWeights:
        """Record where theta_0 comes from, before the first training step (after the methods prepared the model)."""
        named = tracked(model)
        names = [n for n, _ in named]
        index = _usable_index(named, folder) if folder is not None and named else None
        if index is not None:
            return cls(names, index, {})
        return cls(names, None, {n: p.detach().to("cpu", copy=True) for n, p in named})

    def describe(self) -> str:
        if self.mode == "files":
            folder = next(iter(self.index.values())).parent if self.index else "?"
            return f"files: read back from {folder}, no copy kept"
        return f"snapshot: a copy of the trainable weights in host memory ({self.bytes / 2**20:.0f} MiB)"

    def pairs(self, model: Any) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        """(name, theta, theta_0) for every tracked parameter still in `model`, one tensor read at a time."""
        params = dict(model.named_parameters())
        if self.index is None:
            for name in self.names:
                if name in params:
                    yield name, params[name], self.copies[name]
            return
        from safetensors import safe_open

        by_file: dict[Path, list[str]] = {}
        for name in self.names:
            if name in params:
                by_file.setdefault(self.index[name], []).append(name)
        for path, names in by_file.items():
            with safe_open(str(path), framework="pt") as handle:
                for name in names:
                    param = params[name]
                    yield name, param, handle.get_tensor(name).to(param.dtype)

    def release(self) -> None:
        self.copies = {}


def _usable_index(named: list[tuple[str, torch.Tensor]], folder: Path) -> dict[str, Path] | None:
    """The folder's tensor index if it holds exactly these starting weights (spot-checked), else None."""
    from safetensors import safe_open

    folder = Path(folder)
    if not folder.is_dir():
        return None
    index = _file_index(folder)
    if any(name not in index for name, _ in named):
        return None
    shapes = {}
    for path in set(index.values()):
        with safe_open(str(path), framework="pt") as handle:
            shapes.update({n: tuple(handle.get_slice(n).get_shape()) for n in handle.keys() if n in index})  # noqa: SIM118
    if any(shapes[name] != tuple(p.shape) for name, p in named):
        return None
    smallest = min(named, key=lambda item: item[1].numel())
    matrix = next((item for item in named if item[1].dim() == 2), smallest)
    for name, param in {smallest[0]: smallest[1], matrix[0]: matrix[1]}.items():
        with safe_open(str(index[name]), framework="pt") as handle:
            stored = handle.get_tensor(name).to(device=param.device, dtype=param.dtype)
        if not torch.equal(stored, param.detach()):
            return None
    return index
