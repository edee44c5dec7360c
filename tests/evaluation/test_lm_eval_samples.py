"""Audits from lm-eval's own `--log_samples` outputs: the numbers equal lm-eval's and a hand computation.

The folders under tests/data/lm_eval_samples/ are what lm-eval 0.4.13 wrote for the tiny base and
perturbed models of tests/conftest.py on six local tasks (make.py there regenerates them).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from forgetless.errors import ForgetlessError
from forgetless.pipeline.lm_eval_audit import audit_lm_eval_samples

DATA = Path(__file__).resolve().parents[1] / "data" / "lm_eval_samples"
BASE, TUNED = DATA / "base", DATA / "tuned"


def raw(side: Path, task: str, filter_name: str = "none") -> dict[int, dict]:
    """{doc_id: sample} read with nothing but json, from the file lm-eval wrote."""
    (path,) = side.glob(f"*/samples_{task}_2*.jsonl")
    samples = [json.loads(line) for line in path.read_text().splitlines()]
    return {s["doc_id"]: s for s in samples if s["filter"] == filter_name}


def comparison(audit, probe: str, metric: str):  # noqa: ANN001, ANN201
    return next(c for c in audit.comparisons if c.probe == probe and c.metric == metric)


@pytest.fixture(scope="module")
def audit():  # noqa: ANN201
    return audit_lm_eval_samples(BASE, TUNED)


def test_every_aggregate_equals_lm_evals_own(audit) -> None:  # noqa: ANN001
    checked = 0
    for side, evaluation in ((BASE, audit.base), (TUNED, audit.tuned)):
        (path,) = side.glob("*/results_*.json")
        results = json.loads(path.read_text())["results"]
        for probe in evaluation.probes:
            task, _, filter_name = probe.name.partition(".")
            for metric, score in probe.metrics.items():
                key = f"{metric},{filter_name or 'none'}"
                if key in results[task]:  # byte_perplexity of a task that logged only bits_per_byte is ours
                    assert score.value == pytest.approx(results[task][key], rel=1e-9, abs=1e-12), (probe.name, key)
                    checked += 1
    assert checked == 2 * 11  # acc x4, acc_norm, perplexity, word/byte perplexity, bits per byte, exact_match x2
    assert [p.name for p in audit.base.probes] == [
        "tiny_gen.strict",
        "tiny_gen.lower",
        "tiny_ll",
        "tiny_mc",
        "tiny_mc_text",
        "tiny_ppl",
        "tiny_wino",
    ]


def test_accuracy_deltas_equal_the_hand_computed_ones(audit) -> None:  # noqa: ANN001
    b, a = raw(BASE, "tiny_mc"), raw(TUNED, "tiny_mc")
    before = [b[i]["acc"] for i in sorted(b)]
    after = [a[i]["acc"] for i in sorted(b)]
    c = comparison(audit, "tiny_mc", "acc")
    assert (c.before, c.after, c.n) == (pytest.approx(np.mean(before)), pytest.approx(np.mean(after)), 24)
    lost = sum(x == 1 and y == 0 for x, y in zip(before, after, strict=True))
    gained = sum(x == 0 and y == 1 for x, y in zip(before, after, strict=True))
    assert (c.test["lost"], c.test["gained"]) == (lost, gained) and lost + gained > 0
    assert c.delta == pytest.approx((gained - lost) / 24)
    assert audit.primary()["tiny_mc"].metric == "acc"  # the task's first metric
    assert audit.primary()["tiny_ll"].metric == "perplexity"


def _gold_logprob(sample: dict, gold: int) -> float:
    lls = [float(r[0]) for r in sample["filtered_resps"]]
    return lls[gold] - math.log(sum(math.exp(x) for x in lls))


@pytest.mark.parametrize(
    ("task", "gold"),
    [
        ("tiny_mc", lambda s: int(s["target"])),  # the index lm-eval logged
        ("tiny_mc_text", lambda s: s["doc"]["choices"]["label"].index(s["doc"]["answerKey"])),  # target is text
        ("tiny_wino", lambda s: s["doc"]["label"]),  # target is the shared continuation: gold from acc
    ],
)
def test_gold_logprob_delta_equals_the_hand_computed_one(audit, task, gold) -> None:  # noqa: ANN001
    b, a = raw(BASE, task), raw(TUNED, task)
    changes = [_gold_logprob(a[i], gold(a[i])) - _gold_logprob(b[i], gold(b[i])) for i in sorted(b)]
    c = comparison(audit, task, "gold_logprob")
    assert c.delta == pytest.approx(float(np.mean(changes)), abs=1e-12)
    assert c.before == pytest.approx(float(np.mean([_gold_logprob(b[i], gold(b[i])) for i in sorted(b)])))
    # Student's t below 20 items, bootstrap-t tails from 20 (metrics.paired_tests.BOOTSTRAP_MIN).
    assert c.n == len(b) and c.test["kind"] == ("bootstrap_mean" if c.n >= 20 else "paired_mean")


def test_perplexity_changes_equal_the_hand_computed_ones(audit) -> None:  # noqa: ANN001
    b, a = raw(BASE, "tiny_ppl"), raw(TUNED, "tiny_ppl")
    words = sum(b[i]["word_perplexity"][1] for i in b)
    nll_b, nll_a = (-sum(float(s[i]["filtered_resps"][0]) for i in s) for s in (b, a))
    c = comparison(audit, "tiny_ppl", "word_perplexity")
    assert c.before == pytest.approx(math.exp(nll_b / words), rel=1e-12)
    assert c.relative == pytest.approx(math.exp((nll_a - nll_b) / words) - 1, rel=1e-9)
    assert c.note.startswith("lm-eval's word_perplexity: per whitespace-separated word")
    assert c.verdict == "forgot" and c.low > 0  # the perturbed model: far worse, beyond noise
    nbytes = sum(b[i]["bits_per_byte"][1] for i in b)
    byte = comparison(audit, "tiny_ppl", "byte_perplexity")
    assert byte.relative == pytest.approx(math.exp((nll_a - nll_b) / nbytes) - 1, rel=1e-9)

    per_item_b, per_item_a = raw(BASE, "tiny_ll"), raw(TUNED, "tiny_ll")  # lm-eval's loglikelihood perplexity
    ll = comparison(audit, "tiny_ll", "perplexity")
    assert ll.before == pytest.approx(math.exp(-np.mean([s["perplexity"] for s in per_item_b.values()])))
    assert ll.after == pytest.approx(math.exp(-np.mean([s["perplexity"] for s in per_item_a.values()])))


def _copy(side: Path, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(side, folder)
    return folder


def _edit(folder: Path, task: str, change) -> None:  # noqa: ANN001
    (path,) = folder.glob(f"*/samples_{task}_2*.jsonl")
    samples = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(s) + "\n" for s in change(samples)))


def test_documents_are_paired_by_doc_id_whatever_their_order(audit, tmp_path) -> None:  # noqa: ANN001
    tuned = _copy(TUNED, tmp_path, "tuned")
    _edit(tuned, "tiny_mc", lambda samples: samples[::-1])  # ranks gathered out of order write this
    again = audit_lm_eval_samples(BASE, tuned)
    assert [c.delta for c in again.comparisons] == [c.delta for c in audit.comparisons]


def test_a_different_document_is_refused_naming_the_task_and_doc(tmp_path) -> None:  # noqa: ANN001
    tuned = _copy(TUNED, tmp_path, "tuned")

    def other_doc(samples: list[dict]) -> list[dict]:
        samples[5]["doc_hash"] = "0" * 64  # the data changed under doc 5
        return samples

    _edit(tuned, "tiny_mc", other_doc)
    with pytest.raises(ForgetlessError) as error:
        audit_lm_eval_samples(BASE, tuned)
    assert "lm-eval task 'tiny_mc': doc 5 is not the same item in the two runs (doc_hash differs:" in str(error.value)
    assert "same task version, --limit" in str(error.value)


def test_a_different_prompt_is_refused_showing_where_it_differs(tmp_path) -> None:  # noqa: ANN001
    tuned = _copy(TUNED, tmp_path, "tuned")

    def few_shot(samples: list[dict]) -> list[dict]:
        for s in samples[2:]:  # as if a few-shot example were added to every context from doc 2 on
            for request in s["arguments"].values():
                request["arg_0"] = "Q: A dog sees what?\nA: a red ball\n\n" + request["arg_0"]
        return samples

    _edit(tuned, "tiny_mc_text", few_shot)
    with pytest.raises(ForgetlessError) as error:
        audit_lm_eval_samples(BASE, tuned)
    message = str(error.value)
    assert "lm-eval task 'tiny_mc_text': doc 2 is not the same item" in message
    assert "(gen_args_0.arg_0 differs: " in message and "'Q: A dog sees what?" in message


def test_docs_scored_by_one_run_only_are_refused(tmp_path) -> None:  # noqa: ANN001
    tuned = _copy(TUNED, tmp_path, "tuned")
    _edit(tuned, "tiny_ppl", lambda samples: [s for s in samples if s["doc_id"] != 7])
    with pytest.raises(ForgetlessError, match="'tiny_ppl': BASE scored 16 docs and TUNED 15; doc 7 is only in BASE"):
        audit_lm_eval_samples(BASE, tuned)


def test_without_the_results_files_the_samples_alone_give_the_same_audit(audit, tmp_path) -> None:  # noqa: ANN001
    base, tuned = _copy(BASE, tmp_path, "base"), _copy(TUNED, tmp_path, "tuned")
    for path in [*base.glob("*/results_*.json"), *tuned.glob("*/results_*.json")]:
        path.unlink()
    again = audit_lm_eval_samples(base, tuned)
    assert [(c.probe, c.metric, c.delta) for c in again.comparisons] == [
        (c.probe, c.metric, c.delta) for c in audit.comparisons
    ]
    assert again.base.model.spec == str(base / "tiny-base") and audit.base.model.spec == "tiny-base"


def test_folders_without_samples_or_with_several_models_are_refused(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "empty").mkdir()
    with pytest.raises(ForgetlessError, match="BASE '.*empty' holds no lm-eval samples"):
        audit_lm_eval_samples(tmp_path / "empty", TUNED)
    both = tmp_path / "both"
    shutil.copytree(BASE / "tiny-base", both / "tiny-base")
    shutil.copytree(TUNED / "tiny-tuned", both / "tiny-tuned")
    with pytest.raises(ForgetlessError, match="holds the samples of several models: tiny-base, tiny-tuned"):
        audit_lm_eval_samples(BASE, both)
    assert audit_lm_eval_samples(BASE / "tiny-base", both / "tiny-tuned").status is None  # one model: fine
