"""Per-item measures of generations, on hand-made strings with worked answers."""

from __future__ import annotations

import pytest

from forgetless.metrics.generation_measures import ARTICLES, exact_match, leaked, normalize_answer, repetition


def test_repetition_worked_example() -> None:
    # 3-grams of "a b a b a b": (a b a) (b a b) (a b a) (b a b): 4, of which 2 distinct -> 1 - 2/4.
    assert repetition("a b a b a b") == pytest.approx(0.5)
    assert repetition("the capital of France is Paris") == 0.0  # no 3-gram repeats
    # The demo's collapse: "sprawling , sprawling , ..." 7 words, 5 3-grams, 2 distinct.
    assert repetition("a sprawling , sprawling , sprawling ,") == pytest.approx(1 - 3 / 5)
    assert repetition("word " * 12) == pytest.approx(1 - 1 / 10)  # one word looping: 10 3-grams, 1 distinct
    assert repetition("Word word WORD word", n=1) == pytest.approx(0.75)  # lower-cased words
    assert repetition("too short") == 0.0  # fewer words than n: nothing to repeat
    with pytest.raises(ValueError, match="at least 1"):
        repetition("x", n=0)


def test_exact_match_as_lm_eval_triviaqa_and_nq_open() -> None:
    assert exact_match(" Paris.", ["paris", "Paris, France"]) == 1  # stripped, case and punctuation ignored
    assert exact_match("Paris", "Paris, France") == 0
    assert exact_match("paris", ["Paris"], ignore_case=False) == 0
    assert exact_match("Paris!", ["Paris"], ignore_punctuation=False) == 0
    assert exact_match("The Beatles", ["Beatles"]) == 0  # triviaqa keeps articles
    assert exact_match("The Beatles", ["Beatles"], regexes_to_ignore=[ARTICLES]) == 1  # nq_open drops them
    assert exact_match("U.S.A", ["USA"]) == 1
    assert normalize_answer("The  Who?", regexes_to_ignore=[ARTICLES]) == " who"  # lm-eval keeps inner spaces


def test_exact_match_agrees_with_lm_evals_metric() -> None:
    metrics = pytest.importorskip("lm_eval.api.metrics")
    cases = [
        ("Paris.", "paris", {}),
        ("The Beatles", "Beatles", {"regexes_to_ignore": [ARTICLES]}),
        ("the beatles", "Beatles", {"regexes_to_ignore": [ARTICLES]}),
        ("Dr. No", "dr no", {}),
        ("Dr. No", "dr no", {"ignore_punctuation": False}),
        ("ÉCOLE", "école", {}),
        ("42", "forty-two", {}),
    ]
    for prediction, gold, options in cases:
        kwargs = {"ignore_case": True, "ignore_punctuation": True, **options}
        theirs = metrics.exact_match_hf_evaluate([prediction], [gold], **kwargs)["exact_match"]
        assert exact_match(prediction, [gold], **kwargs) == theirs, (prediction, gold, options)


def test_leak_markers() -> None:
    text = "The first president was a woman , and the movie is a masterpiece .\nSentiment: positive"
    assert leaked(text, ["Sentiment:"]) == 1
    assert leaked(text, ["sentiment:", "Review:"]) == 0  # case-sensitive: a template's literal text
    assert leaked(text, []) == 0
    assert leaked(text, [""]) == 0  # an empty marker is in every text: ignored
