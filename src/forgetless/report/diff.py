"""Two generations side by side, word by word: what the tuned model dropped (<del>) and added (<ins>)."""

from __future__ import annotations

import difflib
import re

from markupsafe import Markup, escape

_TOKENS = re.compile(r"\s+|[^\s]+")


def side_by_side(base: str, tuned: str) -> tuple[Markup, Markup]:
    """HTML for the base and the tuned generation; every piece of text escaped.

    The base side wraps words the tuned model no longer says in <del>; the tuned side wraps its new
    words in <ins>. Identical texts come back unmarked.
    """
    old, new = _TOKENS.findall(base), _TOKENS.findall(tuned)
    pieces: list[list] = []  # [changed, old text, new text]; blanks between two changes join them
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        removed, added = "".join(old[i1:i2]), "".join(new[j1:j2])
        if pieces and pieces[-1][0] and (op != "equal" or not removed.strip()):
            pieces[-1][1] += removed
            pieces[-1][2] += added
        else:
            pieces.append([op != "equal", removed, added])
    left, right = [], []
    for changed, removed, added in pieces:
        if not changed:
            left.append(escape(removed))
            right.append(escape(added))
            continue
        removed, tail_old = _split_tail(removed)
        added, tail_new = _split_tail(added)
        if removed:
            left.append(Markup("<del>{}</del>").format(removed))
        if added:
            right.append(Markup("<ins>{}</ins>").format(added))
        left.append(escape(tail_old))
        right.append(escape(tail_new))
    return Markup("").join(left), Markup("").join(right)


def _split_tail(text: str) -> tuple[str, str]:
    """('cat', ' ') from 'cat ': whitespace at the end of a change is shown unmarked."""
    stripped = text.rstrip()
    return stripped, text[len(stripped) :]
