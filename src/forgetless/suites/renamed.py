"""Built-in probes that once bore an lm-evaluation-harness task's name, and the hint for whoever still uses it.

Until 2026-11-30 the built-in suites had probes named `arc_easy`, `hellaswag`, `mmlu_stem`... that score a
fixed sample (200 ARC-Easy validation items), while lm-eval's task of that name scores a whole split (ARC-Easy's
2,376 test items): "arc_easy 0.58" beside lm-eval's arc_easy number misled (issue 15). They are now named after
their sample, `<task>_val<N>` or `<task>_test<N>`, through the `{limit}` placeholder of the suite YAMLs. A budget,
a preset or a lookup that names an old probe gets the new name and this reason, not just "unknown probe".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

RENAMED_ON = "2026-11-30"
SPLITS = {"val": "validation", "test": "test"}

# old name -> what lm-eval's task or group of that name scores (its test split when it has one, as lm-eval does)
RENAMED: dict[str, str] = {
    "arc_easy": "lm-eval's arc_easy (the whole ARC-Easy test split)",
    "arc_challenge": "lm-eval's arc_challenge (the whole ARC-Challenge test split)",
    "hellaswag": "lm-eval's hellaswag (all 10,042 validation items)",
    "boolq": "lm-eval's boolq (all of SuperGLUE BoolQ's validation split)",
    "piqa": "lm-eval's piqa (all of its validation split)",
    "winogrande": "lm-eval's winogrande (all of winogrande_xl's validation split)",
    "triviaqa": "lm-eval's triviaqa (all of rc.nocontext's validation split)",
    "mmlu_stem": "lm-eval's mmlu_stem group (the test splits of all its STEM subjects)",
    "mmlu_humanities": "lm-eval's mmlu_humanities group (the test splits of all its humanities subjects)",
}


def renamed_to(name: str, known: Iterable[str]) -> str | None:
    """The probe among `known` that the built-in probe once called `name` is now ('arc_easy' -> 'arc_easy_val200'),
    or None."""
    if name not in RENAMED:
        return None
    pattern = re.compile(rf"^{re.escape(name)}_(?:val|test)\d+$")
    return next((candidate for candidate in known if pattern.match(candidate)), None)


def renamed_hint(name: str, known: Iterable[str]) -> str:
    """For `name`, a probe that is not among `known`: '' unless it is a built-in probe's old name; then its new
    name among `known` and why, e.g. "'arc_easy' is now 'arc_easy_val200': it scores 200 validation items, not
    lm-eval's arc_easy (the whole ARC-Easy test split)", or, when none of `known` is the new one, the renaming."""
    if name not in RENAMED:
        return ""
    new = renamed_to(name, known)
    if new is not None:
        split, count = re.fullmatch(r"(val|test)(\d+)", new.removeprefix(f"{name}_")).groups()  # type: ignore[union-attr]
        return f"'{name}' is now '{new}': it scores {count} {SPLITS[split]} items, not {RENAMED[name]}"
    return (
        f"built-in probes named after lm-eval tasks were renamed on {RENAMED_ON} after the sample they score "
        f"('{name}_val<N>', '{name}_test<N>'): they score a sample, not {RENAMED[name]}"
    )
