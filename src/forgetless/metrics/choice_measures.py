"""Per-item measures of a multiple-choice answer finer than right or wrong.

An answer's probability falls long before the answer flips, so a paired mean of these changes sees
forgetting with fewer items than accuracy does. Both work on the choices' summed log-likelihoods
as the choice probe scores them (the `acc` scores, not length-normalized).
"""

from __future__ import annotations

from scipy import special


def gold_logprobs(loglikelihoods: list[list[float]], gold: list[int]) -> list[float]:
    """Per item: log P(gold) with the choices' probabilities normalized to sum to one (<= 0)."""
    return [float(lls[g] - special.logsumexp(lls)) for lls, g in zip(loglikelihoods, gold, strict=True)]


def gold_margins(loglikelihoods: list[list[float]], gold: list[int]) -> list[float]:
    """Per item: the gold choice's log-likelihood minus the best wrong choice's (> 0: answered right)."""
    pairs = zip(loglikelihoods, gold, strict=True)
    return [float(lls[g] - max(x for i, x in enumerate(lls) if i != g)) for lls, g in pairs]
