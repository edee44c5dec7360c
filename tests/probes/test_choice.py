"""Multiple choice: item building from templates, acc/acc_norm as lm-eval defines them, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forgetless.errors import ForgetlessError
from forgetless.models import load_model
from forgetless.probes import ScoreOptions
from forgetless.probes.choice import ChoiceConfig, ChoiceProbe
from forgetless.probes.scoring import encode_pair, loglikelihoods

ARC = {
    "context": "Question: {{ question }}\nAnswer:",
    "choices": "{{ choices.text }}",
    "gold": "{{ choices.label.index(answerKey) }}",
}


def arc_probe(path, **kw) -> ChoiceProbe:  # noqa: ANN001
    return ChoiceProbe(ChoiceConfig(name="mc", source=str(path), **{**ARC, **kw}))


def test_items_follow_the_templates(mc_data) -> None:  # noqa: ANN001
    items = arc_probe(mc_data).build_items()
    first = json.loads(mc_data.read_text().splitlines()[0])
    assert len(items) == 24
    assert items[0].requests[0] == (f"Question: {first['question']}\nAnswer:", " " + first["choices"]["text"][0])
    assert items[0].gold == 0 and items[1].gold == 1  # answerKey cycles A, B, C, D


def test_limit_takes_a_fixed_sample(mc_data) -> None:  # noqa: ANN001
    a = arc_probe(mc_data, limit=5, seed=7).build_items()
    b = arc_probe(mc_data, limit=5, seed=7).build_items()
    c = arc_probe(mc_data, limit=5, seed=8).build_items()
    assert [i.requests for i in a] == [i.requests for i in b] != [i.requests for i in c]
    assert len(a) == 5


def test_scores_match_hand_computed_argmax(tiny_model, mc_data) -> None:  # noqa: ANN001
    lm = load_model(str(tiny_model), device="cpu")
    probe = arc_probe(mc_data)
    result = probe.score(lm, probe.prepare(lm.tokenizer), ScoreOptions())
    acc, acc_norm = [], []
    for item in probe.build_items():
        lls = np.array(
            [
                s
                for s, _ in loglikelihoods(
                    lm.model, [encode_pair(lm.tokenizer, c, x) for c, x in item.requests], max_length=128
                )
            ]
        )
        acc.append(int(np.argmax(lls) == item.gold))
        lengths = np.array([len(t) for t in item.lengths], dtype=float)  # characters, as lm-eval 0.4
        acc_norm.append(int(np.argmax(lls / lengths) == item.gold))
    assert result.items["acc"] == acc and result.items["acc_norm"] == acc_norm
    assert result.metrics["acc"].value == pytest.approx(np.mean(acc))
    p, n = np.mean(acc), len(acc)
    assert result.metrics["acc"].stderr == pytest.approx(np.sqrt(p * (1 - p) / (n - 1)))  # lm-eval's stderr


def test_partial_scoring_layout(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "wino.jsonl"
    path.write_text(
        json.dumps({"sentence": "Sarah beat Maria so _ won.", "option1": "Sarah", "option2": "Maria", "answer": "1"})
        + "\n"
    )
    probe = ChoiceProbe(
        ChoiceConfig(
            name="wino",
            source=str(path),
            contexts="{{ [sentence[:sentence.index('_')] ~ option1, sentence[:sentence.index('_')] ~ option2] }}",
            continuation="{{ sentence[sentence.index('_') + 1:].strip() }}",
            gold="{{ {'1': 0, '2': 1}[answer] }}",
        )
    )
    (item,) = probe.build_items()
    assert item.requests == [("Sarah beat Maria so Sarah", " won."), ("Sarah beat Maria so Maria", " won.")]
    assert item.gold == 0


def test_gold_as_choice_text(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "mc.jsonl"
    path.write_text(json.dumps({"q": "Sky?", "opts": ["green", "blue"], "a": "blue", "n": "1"}) + "\n")
    probe = ChoiceProbe(
        ChoiceConfig(name="m", source=str(path), context="{{ q }}", choices="{{ opts }}", gold="{{ a }}")
    )
    assert probe.build_items()[0].gold == 1
    # A digit string is an index, as in lm-eval (doc_to_target "1" means choice 1).
    probe = ChoiceProbe(
        ChoiceConfig(name="m", source=str(path), context="{{ q }}", choices="{{ opts }}", gold="{{ n }}")
    )
    assert probe.build_items()[0].gold == 1


@pytest.mark.parametrize(
    ("record", "overrides", "message"),
    [
        ({"question": "q"}, {}, "(?s)'choices' is undefined.*fields are: question"),
        (
            {"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"},
            {"gold": "{{ 5 }}"},
            "gold index 5 is out of range for 2 choices",
        ),
        (
            {"question": "q", "choices": {"text": "ab"}, "answerKey": "A"},
            {"gold": "{{ 0 }}"},
            "not a list of two or more",
        ),
        ({"question": "q", "choices": {"text": ["a", "b"]}}, {"gold": "{{ 'c' }}"}, "gold answer 'c' is not among"),
    ],
)
def test_bad_items_name_the_problem(tmp_path, record, overrides, message) -> None:  # noqa: ANN001
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ForgetlessError, match=message):
        arc_probe(path, **overrides).build_items()


def test_empty_data_is_an_error(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(ForgetlessError, match="probe 'mc' is empty"):
        arc_probe(path).build_items()


def test_config_needs_one_layout() -> None:
    with pytest.raises(ValueError, match="either `context` and `choices`"):
        ChoiceConfig(name="m", source="x.jsonl", context="c", gold="0")
