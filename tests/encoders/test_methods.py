"""Every method a classifier can use works on an encoder with a classification head (the tiny BERT)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from forgetless.config.classify import CLASSIFY_METHODS
from forgetless.errors import ForgetlessError
from forgetless.methods import TrainContext
from forgetless.methods.blocks import split_by_depth
from forgetless.methods.llrd import depth_rates
from forgetless.methods.lora import peft_task_type
from forgetless.models import load_encoder
from forgetless.train.classify import finetune_classifier, keep_batches
from forgetless.train.finetune import FinetuneSettings
from tests.encoders.encoder_setup import KEEP, NEW_TRAIN, labelled
from tests.methods.forgetting_setup import make

EXAMPLES = {"freeze": {"part": "all_but_head"}, "ewc": {"output": "embedding", "fisher": "sampled"}}
HEAD = {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"}


def classifier(folder: Path):  # noqa: ANN201
    return load_encoder(str(folder), num_labels=2, device="cpu")


def trainable_names(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("name", CLASSIFY_METHODS)
def test_trains_two_steps_on_a_classifier(name: str, tiny_bert: Path, tmp_path: Path) -> None:
    lm = classifier(tiny_bert)
    context = TrainContext(tokenizer=lm.tokenizer, keep_batches=keep_batches(labelled(KEEP), lm.tokenizer, 32, 8))
    settings = FinetuneSettings(steps=2, learning_rate=1e-3, batch_size=4, max_length=32)
    method = make(name, **EXAMPLES.get(name, {}))
    model, metrics = finetune_classifier(
        lm.model, lm.tokenizer, labelled(NEW_TRAIN[:16]), tmp_path, settings, [method], context
    )
    assert all(math.isfinite(loss) for _, loss in metrics["loss_curve"])
    batch = lm.tokenizer(["the cat chases a ball ."], return_tensors="pt")
    assert model(**batch).logits.shape == (1, 2)


def test_blocks_of_bert_are_its_encoder_layers(tiny_bert: Path) -> None:
    model = classifier(tiny_bert).model
    depths = split_by_depth(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert len(depths) == 2
    assert {names[id(p)] for p in depths.embeddings} == {
        f"bert.embeddings.{n}"
        for n in (
            "word_embeddings.weight",
            "position_embeddings.weight",
            "token_type_embeddings.weight",
            "LayerNorm.weight",
            "LayerNorm.bias",
        )
    }
    assert all(names[id(p)].startswith("bert.encoder.layer.1.") for p in depths.blocks[1])
    assert {names[id(p)] for p in depths.top} == HEAD


def test_freeze_all_but_head_trains_only_the_head(tiny_bert: Path) -> None:
    model = classifier(tiny_bert).model
    make("freeze", part="all_but_head").prepare_model(model, TrainContext(tokenizer=None))
    assert trainable_names(model) == HEAD


def test_freeze_first_n_keeps_the_embeddings_and_the_lowest_layer(tiny_bert: Path) -> None:
    model = classifier(tiny_bert).model
    make("freeze", part="first_n", n=1).prepare_model(model, TrainContext(tokenizer=None))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {
        n for n, _ in model.named_parameters() if n.startswith(("bert.embeddings.", "bert.encoder.layer.0."))
    }


def test_freeze_keeps_the_encoder_bit_identical(encoder_base: Path, tmp_path: Path) -> None:
    lm = classifier(encoder_base)
    before = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    settings = FinetuneSettings(steps=5, learning_rate=1e-2, batch_size=8, max_length=32)
    model, _ = finetune_classifier(
        lm.model, lm.tokenizer, labelled(NEW_TRAIN[:40]), tmp_path, settings, [make("freeze", part="all_but_head")]
    )
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], before[n]) for n in before if n not in HEAD)
    assert not torch.equal(after["classifier.weight"], before["classifier.weight"])


def test_llrd_gives_bert_layers_decaying_rates(tiny_bert: Path) -> None:
    model = classifier(tiny_bert).model
    groups = make("llrd", decay=0.5).parameter_groups(model, 1.0)
    rates = {g["name"]: g["lr"] for g in groups}
    assert rates == {f"llrd/{k}": v for k, v in depth_rates(2, 1.0, 0.5).items()}
    embeddings = next(g for g in groups if g["name"] == "llrd/embeddings")
    assert any(p is model.bert.embeddings.LayerNorm.weight for p in embeddings["params"])  # it moves least


def test_unfreeze_starts_with_the_head_and_ends_with_everything(tiny_bert: Path) -> None:
    model = classifier(tiny_bert).model
    method = make("unfreeze", every=1)
    model = method.prepare_model(model, TrainContext(tokenizer=None))
    (callback,) = method.callbacks(TrainContext(tokenizer=None))
    state = type("State", (), {"max_steps": 10, "global_step": 0})()
    callback.on_train_begin(None, state, None, model=model)
    assert trainable_names(model) == HEAD
    state.global_step = 1
    callback.on_step_begin(None, state, None)
    assert trainable_names(model) == HEAD | {n for n, _ in model.named_parameters() if ".layer.1." in n}
    callback.on_train_end(None, state, None)
    assert trainable_names(model) == {n for n, _ in model.named_parameters()}


def test_lora_adapts_the_encoder_and_trains_the_whole_head(tiny_bert: Path) -> None:
    lm = classifier(tiny_bert)
    assert peft_task_type(lm.model) == "SEQ_CLS"
    assert peft_task_type(load_encoder(str(tiny_bert), device="cpu").model) == "FEATURE_EXTRACTION"
    model = make("lora", r=2).prepare_model(lm.model, TrainContext(tokenizer=None))
    names = trainable_names(model)
    assert {n for n in names if "lora_" not in n} == {
        "base_model.model.classifier.modules_to_save.default.weight",
        "base_model.model.classifier.modules_to_save.default.bias",
    }
    assert any("encoder.layer.0.attention.self.query.lora_A" in n for n in names)
    assert not any("classifier" in n and "lora_" in n for n in names)  # the head is trained whole, not adapted


def test_ewc_embedding_fisher_leaves_the_new_head_free(tiny_bert: Path) -> None:
    lm = classifier(tiny_bert)
    ewc = make("ewc", output="embedding", fisher="sampled")
    context = TrainContext(tokenizer=lm.tokenizer, keep_batches=keep_batches(labelled(KEEP), lm.tokenizer, 32, 16))
    ewc.prepare_model(lm.model, context)
    assert float(ewc.fisher["classifier.weight"].abs().sum()) == 0.0  # the head is not on the embedding's path
    assert float(ewc.fisher["bert.encoder.layer.0.attention.self.query.weight"].sum()) > 0
    with pytest.raises(ForgetlessError, match="output 'embedding' .* needs keep_batches"):
        make("ewc", output="embedding").prepare_model(classifier(tiny_bert).model, TrainContext(tokenizer=None))


def test_l2sp_anchors_the_head_too(tiny_bert: Path) -> None:
    model = classifier(tiny_bert).model
    l2sp = make("l2sp")
    l2sp.prepare_model(model, TrainContext(tokenizer=None))
    assert set(l2sp.anchor_names) == {n for n, _ in model.named_parameters()}
