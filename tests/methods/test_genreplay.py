"""genreplay: the base writes its own rehearsal text, filtered and saved with provenance; it forgets less."""

from __future__ import annotations

import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from forgetless.errors import ForgetlessError
from forgetless.methods import TrainContext
from forgetless.methods.genreplay import distinct_trigrams
from tests.methods.forgetting_setup import fine_tune_new, make

SETTINGS = {"samples": 32, "max_new_tokens": 32, "min_words": 6, "ratio": 0.5, "prompts": ["the", "a", "our"]}


def test_distinct_trigrams_by_hand() -> None:
    assert distinct_trigrams("a b c d") == 1.0  # (a b c), (b c d)
    assert distinct_trigrams("a b a b a b") == 0.5  # (a b a) (b a b) (a b a) (b a b): 2 of 4
    assert distinct_trigrams("too short") == 1.0


def test_genreplay_forgets_less_and_says_what_it_kept(old_base, plain, tmp_path) -> None:  # noqa: ANN001
    # Measured over seeds 0-2 and the CPU kernel settings (bench/behaviour_margins.py):
    # forgetting 0.03-0.12x plain's, gain 0.99x.
    outcome = fine_tune_new(old_base, [make("genreplay", **SETTINGS)], tmp_path)
    assert outcome.forgetting < 0.7 * plain.forgetting and outcome.gain > 0.5 * plain.gain
    summary = json.loads((tmp_path / "state" / "genreplay-stage-0.json").read_text())
    kept = [json.loads(line) for line in (tmp_path / "state" / "genreplay-stage-0.jsonl").read_text().splitlines()]
    assert summary["generated"] == 32 and summary["kept"] == len(kept) > 0
    assert summary["kept"] + sum(summary["dropped"].values()) == 32 and summary["seconds"] > 0
    assert all(r["prompt"] in SETTINGS["prompts"] and r["text"].startswith(r["prompt"]) for r in kept)
    assert len({r["text"] for r in kept}) == len(kept)  # no duplicates
    print(f"genreplay forgetting {outcome.forgetting:.3f} vs plain {plain.forgetting:.3f}; {summary}")


def test_nothing_kept_is_an_error_before_training(old_base, tmp_path) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(old_base)
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(old_base)
    method = make("genreplay", **{**SETTINGS, "samples": 4, "min_words": 1000})
    context = TrainContext(tokenizer=tok, max_length=64, state_dir=tmp_path)
    with pytest.raises(ForgetlessError, match="genreplay kept none of its 4 generated texts"):
        method.prepare_model(model, context)
    assert context.notes["genreplay"]["generated"] == 4 and context.notes["genreplay"]["kept"] == 0
    assert json.loads((tmp_path / "genreplay-stage-0.json").read_text())["dropped"]["length"] == 4
