"""forgetless scores the same items as lm-evaluation-harness 0.4.13 and gets the same numbers.

Both tools open the same tiny Llama folder; lm-eval reads the items through a custom task on the
same JSONL file. Per item, the log-likelihood of every choice must agree, hence every prediction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from forgetless.models import load_model
from forgetless.probes import ScoreOptions
from forgetless.probes.choice import ChoiceConfig, ChoiceProbe
from forgetless.probes.perplexity import PerplexityConfig, PerplexityProbe

MC_TASK = """task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {data}
validation_split: validation
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices.text}}}}"
doc_to_target: "{{{{choices.label.index(answerKey)}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""

PPL_TASK = """task: tiny_ppl
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {data}
validation_split: validation
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: bits_per_byte
  - metric: byte_perplexity
"""


def run_lm_eval(model_dir: Path, task_dir: Path, task: str) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir},dtype=float32",
        tasks=[task],
        task_manager=TaskManager(include_path=str(task_dir)),
        device="cpu",
        batch_size=4,
        log_samples=True,
        bootstrap_iters=0,
    )


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory, mc_data, text_data) -> Path:  # noqa: ANN001
    folder = tmp_path_factory.mktemp("tasks")
    (folder / "tiny_mc.yaml").write_text(MC_TASK.format(data=mc_data))
    (folder / "tiny_ppl.yaml").write_text(PPL_TASK.format(data=text_data))
    return folder


def test_choice_matches_lm_eval_item_by_item(tiny_model, mc_data, task_dir) -> None:  # noqa: ANN001
    theirs = run_lm_eval(tiny_model, task_dir, "tiny_mc")
    samples = sorted(theirs["samples"]["tiny_mc"], key=lambda s: s["doc_id"])
    their_lls = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]

    lm = load_model(str(tiny_model), device="cpu")
    probe = ChoiceProbe(
        ChoiceConfig(
            name="mc",
            source=str(mc_data),
            context="Question: {{ question }}\nAnswer:",
            choices="{{ choices.text }}",
            gold="{{ choices.label.index(answerKey) }}",
        )
    )
    ours = probe.score(lm, probe.prepare(lm.tokenizer), ScoreOptions())

    assert len(their_lls) == len(ours.items["lls"]) == 24
    np.testing.assert_allclose(np.array(ours.items["lls"]), np.array(their_lls), atol=1e-4)
    assert ours.items["acc"] == [int(s["acc"]) for s in samples]
    assert ours.items["acc_norm"] == [int(s["acc_norm"]) for s in samples]
    metrics = theirs["results"]["tiny_mc"]
    assert ours.metrics["acc"].value == pytest.approx(metrics["acc,none"])
    assert ours.metrics["acc_norm"].value == pytest.approx(metrics["acc_norm,none"])


def test_perplexity_matches_lm_eval_rolling(tiny_model, text_data, task_dir) -> None:  # noqa: ANN001
    theirs = run_lm_eval(tiny_model, task_dir, "tiny_ppl")["results"]["tiny_ppl"]
    lm = load_model(str(tiny_model), device="cpu")
    probe = PerplexityProbe(PerplexityConfig(name="docs", source=str(text_data), max_length=32))
    ours = probe.score(lm, probe.prepare(lm.tokenizer), ScoreOptions())
    # lm-eval scores with the model's full window (128 here); the documents are shorter than that.
    full = PerplexityProbe(PerplexityConfig(name="docs", source=str(text_data)))
    ours_full = full.score(lm, full.prepare(lm.tokenizer), ScoreOptions())
    assert max(len(json.loads(line)["text"]) for line in text_data.read_text().splitlines()) > 32
    assert ours_full.metrics["bits_per_byte"].value == pytest.approx(theirs["bits_per_byte,none"], rel=1e-5)
    assert ours.metrics["bits_per_byte"].value != pytest.approx(theirs["bits_per_byte,none"], rel=1e-5)
