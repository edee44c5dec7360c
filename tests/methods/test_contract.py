"""Every registered method passes the same checks: typed config, only known hooks, trains end to end."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer

from forgetless.methods import METHODS, Method, TrainContext
from forgetless.train.finetune import FinetuneSettings, finetune
from tests.methods.forgetting_setup import NEW_TRAIN, OLD_TRAIN, make

# Settings for methods that have required fields; every other method must work with its defaults.
EXAMPLES: dict[str, dict[str, object]] = {
    "freeze": {"part": "first_n", "n": 1},
    "genreplay": {"samples": 8, "max_new_tokens": 24, "min_words": 2},  # defaults generate 128 texts: slow here
}


@pytest.mark.parametrize("name", METHODS.names())
def test_config_is_typed_and_strict(name: str) -> None:
    cls = METHODS.get(name)
    method = make(name, **EXAMPLES.get(name, {}))
    assert method.config.name == name
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        cls.config_class(name=name, not_a_field=1, **EXAMPLES.get(name, {}))


@pytest.mark.parametrize("name", METHODS.names())
def test_only_known_hooks(name: str) -> None:
    """A misspelled hook (`penalties`, `prepare`) would never be called: reject unknown public names."""
    cls = METHODS.get(name)
    public = {n for klass in cls.__mro__ if klass not in (Method, object) for n in vars(klass) if not n.startswith("_")}
    assert public - set(Method.hooks) - {"config_class"} == set()
    doc = (sys.modules[cls.__module__].__doc__ or "").strip()
    assert doc, f"{name}: its module docstring is what `forgetless ls methods` shows"


@pytest.mark.parametrize("name", METHODS.names())
def test_trains_two_steps(name: str, old_base, tmp_path) -> None:  # noqa: ANN001
    tok = AutoTokenizer.from_pretrained(old_base)
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(old_base)
    method = make(name, **EXAMPLES.get(name, {}))
    context = TrainContext(tokenizer=tok, keep_texts=OLD_TRAIN[:16], state_dir=tmp_path / "state", max_length=32)
    settings = FinetuneSettings(steps=2, learning_rate=1e-3, batch_size=4, max_length=32)
    model, metrics = finetune(model, tok, NEW_TRAIN[:16], tmp_path / "t", settings, [method], context)
    assert all(math.isfinite(loss) for _, loss in metrics["loss_curve"])
    ids = torch.tensor([tok.encode("1 + 2 = 3 ;")])
    assert torch.isfinite(model(input_ids=ids).logits).all()
