"""Per-item measures of a generated text: is it the answer, does it loop, does it leak a template.

Pure functions on strings, one number per generation, so two models' generations of the same prompts
pair item by item (a 0/1 measure by Tango's interval, a share by paired t).

- `exact_match`: 1 when the generation equals any gold answer after normalization, lm-eval's
  `exact_match` (api/metrics.py `exact_match_hf_evaluate`): the prediction stripped (lm-eval's
  `remove_whitespace` filter), each regex of `regexes_to_ignore` removed from both, then lower-cased
  (`ignore_case`) and stripped of ASCII punctuation (`ignore_punctuation`). lm-eval's triviaqa sets
  ignore_case and ignore_punctuation; its nq_open also ignores articles (`ARTICLES`, its regex).
- `repetition`: the share of a generation's word n-grams that repeat an earlier one,
  1 - distinct / total (0 for no repeat; a loop of one word tends to 1). Higher is worse.
- `leaked`: 1 when the generation contains any marker string (case-sensitive), e.g. a fine-tune's
  own template text ("Sentiment:") showing up in answers to unrelated prompts. Higher is worse.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence

# lm-eval nq_open's regexes_to_ignore: articles before a word, as SQuAD's normalization drops them.
ARTICLES = r"\b(?:The |the |An |A |The |a |an )"
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(
    text: str, *, ignore_case: bool = True, ignore_punctuation: bool = True, regexes_to_ignore: Sequence[str] = ()
) -> str:
    """A text as lm-eval's exact_match compares it (regexes removed, then case, then punctuation)."""
    for pattern in regexes_to_ignore:
        text = re.sub(pattern, "", text)
    if ignore_case:
        text = text.lower()
    if ignore_punctuation:
        text = text.translate(_PUNCTUATION)
    return text


def exact_match(
    prediction: str,
    golds: str | Iterable[str],
    *,
    ignore_case: bool = True,
    ignore_punctuation: bool = True,
    regexes_to_ignore: Sequence[str] = (),
) -> int:
    """1 when the stripped prediction equals any gold answer under the same normalization, else 0.

    Example: exact_match(" Paris.", ["paris", "Paris, France"]) == 1 (case and punctuation ignored).
    """
    options = [golds] if isinstance(golds, str) else list(golds)
    norm = dict(ignore_case=ignore_case, ignore_punctuation=ignore_punctuation, regexes_to_ignore=regexes_to_ignore)
    guess = normalize_answer(prediction.strip(), **norm)  # type: ignore[arg-type]
    return int(any(guess == normalize_answer(str(gold), **norm) for gold in options))  # type: ignore[arg-type]


def repetition(text: str, n: int = 3) -> float:
    """1 - distinct word n-grams / word n-grams (lower-cased, split on whitespace); 0 below n words.

    Example: "a b a b a b" has the 3-grams (a b a), (b a b), (a b a), (b a b): 4, of which 2 are
    distinct, so repetition is 1 - 2/4 = 0.5.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def leaked(text: str, markers: Iterable[str]) -> int:
    """1 when the text contains any of the markers (case-sensitive substrings), else 0."""
    return int(any(marker and marker in text for marker in markers))
