"""Tiny real models and data built by the tests: a byte-level BPE tokenizer and a 2-layer Llama."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import torch

# Tests never reach a hub: fail at once instead of retrying a network that is not there.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Bootstraps draw from a seed that differs between runs (metrics.resampling); tests fix it so a verdict
# near its level cannot flip from one test run to the next. test_bootstrap_t checks that runs differ.
os.environ.setdefault("FORGETLESS_SEED", "20261208")

SUBJECTS = ["the cat", "a dog", "my friend", "the teacher", "a bird", "the farmer", "our team", "the river"]
VERBS = ["sees", "likes", "carries", "paints", "follows", "finds", "builds", "watches"]
OBJECTS = ["a red ball", "the old house", "some green apples", "a long road", "the blue sky", "two small boats"]


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(n)]


def build_tokenizer(folder: Path):  # noqa: ANN201
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    corpus = sentences(300) + ["Question: What is it?\nAnswer: yes no A B C D", "def add(a, b):\n    return a + b"]
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)
    return fast


def build_model(folder: Path, vocab_size: int, seed: int = 0, noise: float = 0.0) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=0,
        eos_token_id=1,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    if noise:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * noise)
    model.save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Llama folder (config, safetensors, tokenizer) that transformers and lm-eval open."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tok = build_tokenizer(folder)
    build_model(folder, len(tok))
    return folder


@pytest.fixture(scope="session")
def tiny_tuned(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with every weight perturbed: a 'fine-tune' that forgot."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-tuned")
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.save_pretrained(folder)
    build_model(folder, len(tok), noise=0.3)
    return folder


@pytest.fixture(scope="session")
def old_base(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model after learning the old task (tests/methods/forgetting_setup.py): a base that can forget."""
    from tests.methods.forgetting_setup import train_old_base

    return train_old_base(tiny_model, tmp_path_factory.mktemp("old-base"))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own result cache, so no test reads another's results."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FORGETLESS_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def mc_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JSONL multiple-choice set in ARC's layout, with a deterministic gold answer."""
    rng = random.Random(1)
    path = tmp_path_factory.mktemp("data") / "mc.jsonl"
    with path.open("w") as handle:
        for i in range(24):
            options = rng.sample(OBJECTS, 4)
            item = {
                "question": f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} what?",
                "choices": {"text": options, "label": ["A", "B", "C", "D"]},
                "answerKey": "ABCD"[i % 4],
                "id": i,
            }
            handle.write(json.dumps(item) + "\n")
    return path


@pytest.fixture(scope="session")
def text_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Held-out 'documents' (JSONL with `text`), some longer than the tiny model's window."""
    path = tmp_path_factory.mktemp("data") / "docs.jsonl"
    with path.open("w") as handle:
        for i in range(16):
            handle.write(json.dumps({"text": " ".join(sentences(2 + 3 * (i % 5), seed=100 + i))}) + "\n")
    return path


def write_suite(folder: Path, mc: Path, docs: Path, extra: str = "") -> Path:
    path = folder / "suite.yaml"
    path.write_text(
        f"""name: tiny
probes:
  - name: docs_ppl
    kind: perplexity
    source: {docs}
  - name: mc
    kind: choice
    source: {mc}
    context: "Question: {{{{ question }}}}\\nAnswer:"
    choices: "{{{{ choices.text }}}}"
    gold: "{{{{ choices.label.index(answerKey) }}}}"
  - name: canaries
    kind: canary
    max_new_tokens: 6
    prompts:
      - {{prompt: "The cat sees", expect: ["ball"]}}
      - "A dog likes"
{extra}"""
    )
    return path


@pytest.fixture
def tiny_suite(tmp_path: Path, mc_data: Path, text_data: Path) -> Path:
    return write_suite(tmp_path, mc_data, text_data)
