"""The `lm_eval` probe gets lm-evaluation-harness's own numbers, item by item, on the same tasks.

lm-eval (`simple_evaluate(model="hf", log_samples=True)`) and forgetless open the same tiny Llama and the
same task YAMLs (local JSONL files, so both run offline): a multiple-choice task zero-shot and two-shot on
a sample of its items, a loglikelihood task, a loglikelihood_rolling task and a generate_until task
(stop strings, the remove_whitespace filter, exact_match against a list of answers). Every item's
prediction must be lm-eval's (0 items differ); log-likelihoods agree within 1e-4 nats (measured: at most
1.9e-6 on the tiny model, rolling ones exactly equal: forgetless batches and shares contexts differently
from lm-eval, so float sums run in another order); generations are the same strings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from forgetless.models import load_model
from forgetless.probes import ScoreOptions
from forgetless.probes.lmeval import LmEvalConfig, LmEvalProbe
from tests.conftest import sentences

TOLERANCE = 1e-4
DATA = """dataset_path: json
dataset_kwargs:
  data_files:
    validation: {data}
validation_split: validation
"""
MC = """task: tiny_mc
output_type: multiple_choice
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: "{{choices.text}}"
doc_to_target: "{{choices.label.index(answerKey)}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""
LL = """task: tiny_ll
output_type: loglikelihood
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_target: " {{choices.text[choices.label.index(answerKey)]}}"
"""
ROLLING = """task: tiny_rolling
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
"""
GEN = """task: tiny_gen
output_type: generate_until
doc_to_text: "{{prompt}}"
doc_to_target: "{{answers}}"
generation_kwargs: {until: ["n", "\\n"], max_gen_toks: 6, do_sample: false, temperature: 0.0}
filter_list:
  - name: remove_whitespace
    filter: [{function: remove_whitespace}, {function: take_first}]
metric_list:
  - {metric: exact_match, aggregation: mean, higher_is_better: true, ignore_case: true, ignore_punctuation: true}
"""
SAMPLE = [2, 3, 4, 8, 14, 15, 18, 22]  # the two-shot task's items: forgetless's sample of 8, seed 1


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory, mc_data: Path, text_data: Path, tiny_model: Path) -> Path:
    folder = tmp_path_factory.mktemp("lm-eval-tasks")
    (folder / "gen.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gen_records(tiny_model)))
    (folder / "tiny_gen.yaml").write_text(DATA.format(data=folder / "gen.jsonl") + GEN)
    (folder / "tiny_mc.yaml").write_text(DATA.format(data=mc_data) + MC)
    (folder / "tiny_mc_2shot.yaml").write_text("include: tiny_mc.yaml\ntask: tiny_mc_2shot\nnum_fewshot: 2\n")
    (folder / "tiny_ll.yaml").write_text(DATA.format(data=mc_data) + LL)
    (folder / "tiny_rolling.yaml").write_text(DATA.format(data=text_data) + ROLLING)
    return folder


@torch.inference_mode()
def gen_records(tiny_model: Path) -> list[dict]:
    """Prompts whose gold answers are, for every other one, the tiny model's own greedy answer (cut at the
    task's stops, upper-cased: exact_match ignores case), so exact_match is 1 on half the items."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(tiny_model), AutoModelForCausalLM.from_pretrained(tiny_model)
    records = []
    for i, text in enumerate(sentences(12, seed=7)):
        prompt = " ".join(text.split()[:3])
        ids = torch.tensor([tok(prompt)["input_ids"]])
        out = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.eos_token_id)
        answer = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).split("n")[0].split("\n")[0].strip()
        records.append({"prompt": prompt, "answers": ["zzz", answer.upper()] if i % 2 == 0 else ["zzz"]})
    return records


@pytest.fixture(scope="module")
def theirs(tiny_model: Path, task_dir: Path) -> dict:
    """One lm-eval run over the five tasks (its own index of lm-eval's tasks left out: 15 s saved)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_model},dtype=float32",
        tasks=["tiny_mc", "tiny_mc_2shot", "tiny_ll", "tiny_rolling", "tiny_gen"],
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
        samples={"tiny_mc_2shot": SAMPLE},
        device="cpu",
        batch_size=4,
        log_samples=True,
        bootstrap_iters=0,
    )


@pytest.fixture(scope="module")
def lm(tiny_model: Path):  # noqa: ANN201
    return load_model(str(tiny_model), device="cpu")


def ours(lm, task_dir: Path, task: str, logged: list[dict], **extra):  # noqa: ANN001, ANN003, ANN201
    """forgetless's result, once its requests are checked to be lm-eval's, string for string."""
    probe = LmEvalProbe(LmEvalConfig(name=task, task=task, include_path=[str(task_dir)], **extra))
    prepared = probe.prepare(lm.tokenizer)
    assert [i.args for d in prepared["docs"] for i in d.instances] == [tuple(a) for s in logged for a in s["arguments"]]
    return probe.score(lm, prepared, ScoreOptions())


def samples(theirs: dict, task: str) -> list[dict]:
    return sorted(theirs["samples"][task], key=lambda s: s["doc_id"])


@pytest.mark.parametrize(("task", "extra"), [("tiny_mc", {}), ("tiny_mc_2shot", {"limit": 8, "seed": 1})])
def test_multiple_choice_items_and_accuracies_are_lm_evals(theirs, lm, task_dir, task, extra) -> None:  # noqa: ANN001
    logged = samples(theirs, task)
    mine = ours(lm, task_dir, task, logged, **extra)
    if extra:  # the same items: forgetless's sample is the one lm-eval was told to score
        assert mine.items["doc_id"] == SAMPLE
    assert logged[0]["arguments"][0][0].count("Question:") == (3 if extra else 1)  # two shots, then the item
    their_lls = np.array([[float(r[0]) for r in s["filtered_resps"]] for s in logged])
    assert np.abs(np.array(mine.items["lls"]) - their_lls).max() < TOLERANCE
    for metric in ("acc", "acc_norm"):
        assert mine.items[metric] == [float(s[metric]) for s in logged]  # 0 items differ
        assert mine.metrics[metric].value == pytest.approx(theirs["results"][task][f"{metric},none"])
    assert mine.scored == (
        "lm-eval tiny_mc_2shot validation, 2-shot, 8 of 24" if extra else "lm-eval tiny_mc validation, 24 of 24"
    )


def test_loglikelihood_items_are_lm_evals(theirs, lm, task_dir) -> None:  # noqa: ANN001
    logged = samples(theirs, "tiny_ll")
    mine = ours(lm, task_dir, "tiny_ll", logged)
    their_ll = np.array([float(s["filtered_resps"][0][0]) for s in logged])
    assert np.abs(np.array(mine.items["ll"]) - their_ll).max() < TOLERANCE
    assert mine.items["acc"] == [float(s["acc"]) for s in logged]
    results = theirs["results"]["tiny_ll"]
    assert mine.metrics["acc"].value == pytest.approx(results["acc,none"])
    assert mine.metrics["perplexity"].value == pytest.approx(results["perplexity,none"], rel=1e-4)
    assert mine.primary == "acc"


def test_rolling_perplexities_are_lm_evals(theirs, lm, task_dir) -> None:  # noqa: ANN001
    logged = samples(theirs, "tiny_rolling")
    mine = ours(lm, task_dir, "tiny_rolling", logged)
    their_ll = np.array([float(s["filtered_resps"][0]) for s in logged])
    assert np.abs(-np.array(mine.items["nll"]) - their_ll).max() < TOLERANCE
    results = theirs["results"]["tiny_rolling"]
    for metric in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        assert mine.metrics[metric].value == pytest.approx(results[f"{metric},none"], rel=1e-5)
    assert mine.primary == "perplexity"
    assert mine.metrics["perplexity"].value > 1


def test_generations_and_exact_match_are_lm_evals(theirs, lm, task_dir) -> None:  # noqa: ANN001
    logged = samples(theirs, "tiny_gen")
    mine = ours(lm, task_dir, "tiny_gen", logged)
    assert mine.items["generation"] == [s["resps"][0][0] for s in logged]  # the same greedy generations
    assert mine.items["filtered"] == [s["filtered_resps"][0] for s in logged]
    assert mine.items["exact_match"] == [float(s["exact_match"]) for s in logged]  # 0 items differ
    assert mine.items["exact_match"][::2] == [1.0] * 6  # the model's own answers, upper-cased, match
    assert mine.metrics["exact_match"].value == pytest.approx(
        theirs["results"]["tiny_gen"]["exact_match,remove_whitespace"]
    )
    assert mine.primary == "exact_match"
