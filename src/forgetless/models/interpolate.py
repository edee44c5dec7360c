"""Interpolate a fine-tune with its base (WiSE-FT): full weights by lerp, a LoRA adapter by scaling B.

Wortsman et al. 2022, "Robust fine-tuning of zero-shot models": theta(alpha) = theta_base +
alpha * (theta_tuned - theta_base); alpha = 0 is the base, alpha = 1 the fine-tune. A LoRA
adapter's update is scale * B @ A, so multiplying every B by alpha scales the update by alpha:
the same interpolation, without touching the base weights. DoRA also rescales each column's norm,
which is not linear in B, so it cannot be interpolated this way. `compatibility_problems` says
whether two loaded models can be interpolated at all (same tokenizer, same parameters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from forgetless.errors import ForgetlessError

if TYPE_CHECKING:
    from forgetless.models.loading import LoadedModel


def lora_b(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """The B matrices of every LoRA layer (empty for a model without adapters)."""
    return [(n, p) for n, p in model.named_parameters() if "lora_B" in n]


def check_linear_adapter(model: Any, fix: str) -> None:
    """Raise when `model` carries a DoRA adapter, whose update does not scale linearly with B."""
    if any(getattr(c, "use_dora", False) for c in getattr(model, "peft_config", {}).values()):
        raise ForgetlessError("a DoRA adapter cannot be interpolated linearly (its magnitudes are not)", fix)


@torch.no_grad()
def interpolate_(
    model: torch.nn.Module,
    base: Mapping[str, torch.Tensor],
    alpha: float,
    tuned: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Set every parameter named in `base` to base + alpha * (tuned - base), in place.

    Args:
        model: the model whose parameters are overwritten.
        base: the weights at alpha = 0, by parameter name; parameters not named here are left alone.
        alpha: weight of the fine-tune, 0 (base) to 1 (fine-tune).
        tuned: the weights at alpha = 1; default: the parameters' current values (the fine-tune itself).
    """
    for name, p in model.named_parameters():
        if name in base:
            end = p if tuned is None else tuned[name].to(p.device)
            p.copy_(torch.lerp(base[name].to(p.device), end, alpha))


@torch.no_grad()
def scale_lora_(model: torch.nn.Module, alpha: float, original: Mapping[str, torch.Tensor] | None = None) -> None:
    """Set every LoRA B to alpha * original (default: its current value): the adapter's update times alpha."""
    for name, p in lora_b(model):
        if original is None:
            p.mul_(alpha)
        else:
            p.copy_(original[name].to(p.device) * alpha)


def full_weights(lm: LoadedModel) -> dict[str, torch.Tensor]:
    """Full-model weights by name; for an adapter, the weights under it (LoRA layers unwrapped)."""
    if lm.source != "adapter":
        return dict(lm.model.named_parameters())
    inner = lm.model.get_base_model().named_parameters()
    return {n.replace(".base_layer.", "."): p for n, p in inner if "lora_" not in n}


def compatibility_problems(base: LoadedModel, tuned: LoadedModel) -> list[str]:
    """Why `tuned` cannot be interpolated with `base`: tokenizer, architecture, an adapter's base weights."""
    problems = []
    old, new = base.tokenizer.get_vocab(), tuned.tokenizer.get_vocab()
    if old != new:
        differ = len(set(old.items()) ^ set(new.items()))
        problems.append(f"the tokenizers differ ({len(old)} and {len(new)} tokens; {differ} entries not shared)")
    inner = tuned.model.get_base_model() if tuned.source == "adapter" else tuned.model
    kinds = [(type(m).__name__, getattr(m.config, "model_type", "?")) for m in (base.model, inner)]
    if kinds[0] != kinds[1]:
        problems.append(f"the architectures differ: {kinds[0][0]} ({kinds[0][1]}) and {kinds[1][0]} ({kinds[1][1]})")
    a, b = full_weights(base), full_weights(tuned)
    shapes = [f"{n} missing from TUNED" for n in a if n not in b] + [f"{n} not in BASE" for n in b if n not in a]
    shapes += [f"{n} is {tuple(a[n].shape)} and {tuple(b[n].shape)}" for n in a if n in b and a[n].shape != b[n].shape]
    if shapes:
        problems.append(f"{len(shapes)} parameter(s) differ in name or shape, e.g. {'; '.join(shapes[:3])}")
    elif tuned.source == "adapter":
        moved = [n for n in a if not torch.equal(a[n], b[n].to(a[n].device))]
        if moved:
            problems.append(f"the adapter sits on other weights than BASE ({len(moved)} of {len(a)} tensors differ)")
    return problems
