"""Units people read: accuracies in percent and percentage points, perplexities with their % change.

The plots and the HTML tables agree on one convention: a change is shown in its natural direction
(accuracy points: negative = forgot; perplexity %: positive = forgot), with the direction stated.
"""

from __future__ import annotations

import math
from typing import Any

# The metrics measured in points and in percent; mirror forgetless.guard.budget's ACCURACY_METRICS and
# PERPLEXITY_METRICS (a test keeps them equal), kept here so that rendering a report from JSON imports
# neither torch nor the probes.
ACCURACY_METRICS = frozenset({"acc", "acc_norm", "acc_bytes", "expect_rate", "exact_match"})
PERPLEXITY_METRICS = frozenset({"perplexity", "word_perplexity", "byte_perplexity"})


def axis_label(unit: str, axis: str = "y", what: str = "") -> str:
    """The label of a change axis, with its direction: 'accuracy change (points), higher is better ->'."""
    name = what or ("accuracy" if unit == "points" else "perplexity")
    better = "higher is better" if unit == "points" else "lower is better"
    arrow = (
        ("\u2191" if unit == "points" else "\u2193") if axis == "y" else ("\u2192" if unit == "points" else "\u2190")
    )
    sep = "\n" if axis == "y" else ", "
    return f"{name} change ({'points' if unit == 'points' else '%'}){sep}{better} {arrow}"


def unit_of(metric: str) -> str | None:
    """'points' for accuracies, 'percent' for perplexity, None for metrics without a budget unit."""
    if metric in ACCURACY_METRICS:
        return "points"
    return "percent" if metric in PERPLEXITY_METRICS else None


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def change(c: dict[str, Any]) -> tuple[float, float | None, float | None, str] | None:
    """A comparison's change in its unit: (value, low, high, unit); None when the metric has no unit.

    Accuracy: the delta in points (0.63 -> 0.56 is -7.0). Perplexity: the relative change in percent
    (52.9 -> 56.5 is +6.8); its interval is the paired interval of the difference over the base value.
    """
    unit = unit_of(c["metric"])
    if unit is None or not finite(c.get("delta")):
        return None
    low, high = c.get("low"), c.get("high")
    if unit == "points":
        scale, value = 100.0, c["delta"] * 100
    else:
        if not finite(c.get("before")) or c["before"] == 0:
            return None
        scale = 100.0 / c["before"]
        value = (c["relative"] if finite(c.get("relative")) else c["delta"] / c["before"]) * 100
    if not (finite(low) and finite(high)):
        return value, None, None, unit
    return value, low * scale, high * scale, unit


def budget_change(check: dict[str, Any]) -> float:
    """A budget check's `change` (a loss, positive = worse) turned to the natural direction of its unit."""
    return -check["change"] if check["unit"] in ("points", "nats") else check["change"]


def budget_line(limit: float, unit: str) -> float:
    """Where a limit lies on the natural axis: -limit points for accuracy, +limit % for perplexity."""
    return -limit if unit in ("points", "nats") else limit


def unit_suffix(unit: str) -> str:
    return {"points": " pt", "nats": " nats", "kl": " nats (KL)"}.get(unit, "%")


def fmt_value(metric: str, value: Any) -> str:
    """A metric's value: accuracies as percent, perplexity with 2 decimals, the rest with 4."""
    if not finite(value):
        return "" if value is None else "n/a"
    if metric in ACCURACY_METRICS:
        return f"{value * 100:.1f}%"
    return f"{value:.2f}" if metric in PERPLEXITY_METRICS else f"{value:.4f}"


def fmt_change(c: dict[str, Any]) -> str:
    """The change column: '-7.0 pt', '+3.60 (+6.8%)', or a signed number."""
    if not finite(c.get("delta")):
        return "n/a"
    if c["metric"] in ACCURACY_METRICS:
        return f"{c['delta'] * 100:+.1f} pt"
    if c["metric"] in PERPLEXITY_METRICS and finite(c.get("relative")):
        return f"{c['delta']:+.2f} ({c['relative']:+.1%})"
    return f"{c['delta']:+.4f}"


def fmt_interval(c: dict[str, Any]) -> str:
    """The 95% interval of the change, in the change's own unit; empty when there is none."""
    low, high = c.get("low"), c.get("high")
    if not (finite(low) and finite(high)):
        return ""
    if c["metric"] in ACCURACY_METRICS:
        return f"[{low * 100:+.1f}, {high * 100:+.1f}] pt"
    digits = 2 if c["metric"] in PERPLEXITY_METRICS else 4
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def fmt_number(value: Any, spec: str = "+.3f") -> str:
    return format(value, spec) if finite(value) else "n/a"
