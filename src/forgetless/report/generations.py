"""What a person would notice first: per fine-tune, how its generations changed, in words, with examples.

Accuracy tables hide what a reader sees at once (issue 15: after the demo's plain fine-tune every canary
answered in the review format, "The capital of France is a sprawling , sprawling ...", under a headline of
probes "kept"). This module reads an audit's generation probes (kinds `generation` and `canary`) and says,
from their paired comparisons only, which generation measures moved beyond noise (leak of the fine-tune's
template, repetition, exact match, a canary's expected answers) with their numbers and intervals, then picks
a few generations of the same prompts before and after. A fine-tune whose generation measures all stayed
within noise gets one line saying so. Nothing here is a fixed sentence about a particular fine-tune: every
word is chosen by a measured verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from forgetless.report.diff import side_by_side
from forgetless.report.html import parts
from forgetless.report.markdown import table
from forgetless.report.terminal import print_table, say

GENERATION_KINDS = ("canary", "generation")
MEASURES = ("leak", "repetition", "exact_match", "expect_rate")  # the generation measures with a verdict
SHOWN = 3  # example generations per fine-tune: enough to see a pattern, few enough to read
NEWLINE = " \u23ce "  # a generation's line breaks, visible in one table cell


@dataclass(frozen=True)
class Example:
    """One prompt's generation before (the base) and after (the fine-tune)."""

    probe: str
    prompt: str
    before: str
    after: str


@dataclass(frozen=True)
class GenerationNews:
    """A fine-tune's generation changes: `changed` when any measure moved beyond noise; `line` says how."""

    method: str
    changed: bool
    line: str
    examples: list[Example] = field(default_factory=list)

    def text(self) -> str:
        return f"{self.method}: {self.line}"


def generation_news(method: str, audit: dict[str, Any], markers: list[str] | tuple[str, ...] = ()) -> GenerationNews:
    """What changed in `audit`'s generations. `markers`: the fine-tune's template lines (the leak markers), to
    name which of them the generations took on; without them a leak is counted, not named."""
    before = {p["name"]: p for p in audit["base"]["probes"] if p["kind"] in GENERATION_KINDS}
    after = {p["name"]: p for p in audit["tuned"]["probes"] if p["name"] in before and p["role"] == "general"}
    if not after:
        return GenerationNews(method, False, "no generation probe was scored")
    moved = [
        c
        for c in audit["comparisons"]
        if c["probe"] in after and c["metric"] in MEASURES and c["verdict"] in ("forgot", "improved")
    ]
    if not moved:
        differ = [_differ(before[n], after[n], markers) for n in after]
        return GenerationNews(method, False, "no generation measure changed beyond noise (" + "; ".join(differ) + ")")
    moved.sort(key=lambda c: MEASURES.index(c["metric"]))  # the most visible first: a template in every answer
    leads = list(dict.fromkeys(_lead(c) for c in moved))
    probes = list(dict.fromkeys(c["probe"] for c in moved))
    details = [
        f"{name}: " + ", ".join(_detail(c, after[name], markers) for c in moved if c["probe"] == name)
        for name in probes
    ]
    line = "generations " + " and ".join(leads) + ": " + "; ".join(details)
    probes += [n for n in after if n not in probes]
    return GenerationNews(method, True, line, examples(before, after, probes, markers))


# What a measure that moved means, after "generations": (when worse, when better). Worse is `forgot`, whichever
# way the number went (more leak, more repetition, less exact match).
LEADS = {
    "leak": ("take on the fine-tune's template", "hold its template less often"),
    "repetition": ("repeat themselves more", "repeat themselves less"),
    "exact_match": ("get fewer short answers right", "get more short answers right"),
    "expect_rate": ("lose the canaries' expected answers", "find more of the canaries' expected answers"),
}


def _lead(c: dict[str, Any]) -> str:
    worse, better = LEADS[c["metric"]]
    return worse if c["verdict"] == "forgot" else better


def _interval(c: dict[str, Any], scale: float, digits: int) -> str:
    if c.get("low") is None or c.get("high") is None:
        return ""
    return f" [{c['low'] * scale:+.{digits}f}, {c['high'] * scale:+.{digits}f}]"


def _detail(c: dict[str, Any], new: dict[str, Any], markers: list[str] | tuple[str, ...]) -> str:
    """'100% contain 'Sentiment:' (0% before; +100.0 points [+92.6, +100.0])', 'repetition 0.21 -> 0.50 (...)'."""
    metric = c["metric"]
    if metric == "repetition":
        return f"repetition {c['before']:.2f} -> {c['after']:.2f} ({c['delta']:+.2f}{_interval(c, 1, 2)})"
    change = f"{c['delta'] * 100:+.1f} points{_interval(c, 100, 1)}"
    if metric == "leak":
        what = _markers_found(new["items"]["generation"], markers) or "a template marker"
        return f"{c['after']:.0%} contain {what} ({c['before']:.0%} before; {change})"
    label = {"exact_match": "exact match", "expect_rate": "expected answer found"}[metric]
    return f"{label} {c['before']:.1%} -> {c['after']:.1%} ({change})"


def _markers_found(texts: list[str], markers: list[str] | tuple[str, ...]) -> str:
    """ "'Sentiment:'", or "'Sentiment:' (100%) or 'Review:' (43%)": the markers in `texts`, most frequent first."""
    shares = [(m, sum(m in t for t in texts) / len(texts)) for m in markers] if texts else []
    found = sorted((s for s in shares if s[1] > 0), key=lambda s: -s[1])
    if len(found) == 1:
        return f"'{found[0][0]}'"
    return " or ".join(f"'{m}' ({share:.0%})" for m, share in found)


def _differ(old: dict[str, Any], new: dict[str, Any], markers: list[str] | tuple[str, ...] = ()) -> str:
    """'canaries: 8 of 8 generations differ from the base's, 7 contain 'Sentiment:' (0 before; not tested)'.

    A probe without a leak measure (canaries: a few prompts, no paired test of markers) still shows the markers
    its generations took on, counted and labelled untested, so the line never hides what a reader would see.
    """
    pairs = list(zip(old["items"]["generation"], new["items"]["generation"], strict=True))
    text = f"{new['name']}: {sum(a != b for a, b in pairs)} of {len(pairs)} generations differ from the base's"
    if "leak" in new["items"]:
        return text
    counts = [(m, sum(m in b for _, b in pairs), sum(m in a for a, _ in pairs)) for m in markers]
    found = sorted((c for c in counts if c[1] > c[2]), key=lambda c: -c[1])
    if found:
        text += ", " + ", ".join(f"{n} contain '{m}' ({b} before; not tested)" for m, n, b in found)
    return text


def examples(
    before: dict[str, Any], after: dict[str, Any], probes: list[str], markers: list[str] | tuple[str, ...] = ()
) -> list[Example]:
    """Up to SHOWN changed generations, taken in turn from `probes` (those that moved first); in each, the
    prompts whose generation newly holds a marker or lost its expected answer come first."""
    queues = []
    for name in probes:
        old, new = before[name]["items"], after[name]["items"]
        ranked = []
        for i, prompt in enumerate(new["prompt"]):
            a, b = old["generation"][i], new["generation"][i]
            if a == b:
                continue
            marked = any(m in b and m not in a for m in markers) or _flag(new, "leak", i) > _flag(old, "leak", i)
            lost = _flag(old, "hit", i) > _flag(new, "hit", i) or _flag(old, "exact_match", i) > _flag(
                new, "exact_match", i
            )
            ranked.append(((not marked, not lost, i), Example(name, prompt, a, b)))
        queues.append([e for _, e in sorted(ranked, key=lambda r: r[0])])
    out: list[Example] = []
    while len(out) < SHOWN and any(queues):
        for queue in queues:
            if queue and len(out) < SHOWN:
                out.append(queue.pop(0))
    return out


def _flag(items: dict[str, Any], key: str, i: int) -> int:
    values = items.get(key)
    return int(values[i]) if values else 0


def clip(text: str, limit: int = 160, keep_end: bool = False) -> str:
    """One line of at most `limit` characters, line breaks shown; a prompt keeps its end (where the model goes on)."""
    flat = text.replace("\n", NEWLINE)
    if len(flat) <= limit:
        return flat
    return "\u2026" + flat[-(limit - 1) :] if keep_end else flat[: limit - 1] + "\u2026"


def generations_markdown(news: list[GenerationNews]) -> list[str]:
    """The report's first section: one line per fine-tune, then each changed one's examples side by side."""
    if not news:
        return []
    lines = ["## What changed in the generations", ""]
    lines += [f"- **{n.method}**: {n.line}" for n in news]
    lines.append("")
    for n in (n for n in news if n.examples):
        rows = [[e.probe, clip(e.prompt, 80, keep_end=True), clip(e.before), clip(e.after)] for e in n.examples]
        lines += [
            f"{n.method}, the same prompts before and after:",
            "",
            table(["probe", "prompt", "base", n.method], rows),
        ]
        lines.append("")
    return lines


def generations_html(news: list[GenerationNews]) -> Markup | None:
    """The same for the HTML page: the lines, then each changed fine-tune's examples, differences marked."""
    if not news:
        return None
    items = Markup("").join(Markup("<li><b>{}</b>: {}</li>").format(n.method, n.line) for n in news)
    out = [Markup("<ul class='generation-news'>{}</ul>").format(items)]
    for n in (n for n in news if n.examples):
        rows = []
        for e in n.examples:
            left, right = side_by_side(clip(e.before, 400), clip(e.after, 400))
            rows.append(
                {
                    "prompt": clip(e.prompt, 120, keep_end=True),
                    "base": left,
                    "tuned": right,
                    "status": e.probe,
                    "status_kind": "",
                    "expect": "",
                }
            )
        out.append(parts().canary(f"{n.method}: before and after", rows, ""))
    return Markup("").join(out)


def print_news(news: list[GenerationNews]) -> None:
    """The terminal's summary opens the same way: a line per fine-tune, then the examples in one table."""
    if not news:
        return
    say(("what changed in the generations", "bold"))
    for n in news:
        say((n.method, "bold"), f": {n.line}")
    rows = [
        [n.method, e.probe, clip(e.prompt, 50, keep_end=True), clip(e.before, 70), clip(e.after, 70)]
        for n in news
        for e in n.examples
    ]
    if rows:
        print_table("the same prompts before and after", ["method", "probe", "prompt", "base", "after"], rows)
