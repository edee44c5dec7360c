"""How a budget status looks wherever it is shown: one colour per status for pages, figures and the terminal.

within is green, inconclusive amber (neither within nor over: never shown as within), over red;
`noise` is the inconclusive of documents written before 0.4.
"""

from __future__ import annotations

STATUS_COLORS = {"within": "#2a9d5c", "inconclusive": "#d08c1a", "noise": "#d08c1a", "over": "#c8443a", "": "#3d6fb6"}
STATUSES = ("within", "inconclusive", "noise", "over")


def status_color(status: str | None) -> str:
    """The colour of a status; the neutral blue for none (no budget)."""
    return STATUS_COLORS.get(status or "", STATUS_COLORS[""])


def status_css() -> str:
    """The page's rules for a status shown as a pill, a verdict block or a card (class = the status word)."""
    rules = []
    for status in STATUSES:
        color = STATUS_COLORS[status]
        rules.append(f".pill.{status} {{ color: {color}; border-color: {color}; background: {color}1f; }}")
        rules.append(f"#verdict.{status} {{ border-left-color: {color}; }} .card.{status} .value {{ color: {color}; }}")
    return "\n".join(rules)
