"""Regenerate the lm-eval samples under tests/data/lm_eval_samples/ (needs lm-eval 0.4.13, offline).

    .venv/bin/python tests/data/lm_eval_samples/make.py

Builds the tiny base and perturbed models of tests/conftest.py, writes five local tasks
(`dataset_path: json`, no network) covering every output type the audit reads, scores both models
with lm-eval's `simple_evaluate(model="hf", log_samples=True)` and saves the results and samples the
way `lm_eval --output_path DIR --log_samples` does (`EvaluationTracker.save_results_aggregated`,
then `save_results_samples` per task): DIR/<model name>/results_<date>.json and
samples_<task>_<date>.jsonl. Paths are relative to a scratch folder, so nothing of this machine leaks
into the files.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.conftest import OBJECTS, SUBJECTS, VERBS, build_model, build_tokenizer, sentences  # noqa: E402

TASKS = {
    # Multiple choice, gold given as an index (ARC's layout).
    "tiny_mc": """output_type: multiple_choice
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: "{{choices.text}}"
doc_to_target: "{{choices.label.index(answerKey)}}"
metric_list: [{metric: acc}, {metric: acc_norm}]
""",
    # Multiple choice, gold given as the answer's text.
    "tiny_mc_text": """output_type: multiple_choice
doc_to_text: "{{question}}"
doc_to_choice: "{{choices.text}}"
doc_to_target: "{{choices.text[choices.label.index(answerKey)]}}"
metric_list: [{metric: acc}]
""",
    # Several contexts and one continuation (Winogrande's partial scoring): target is the continuation.
    "tiny_wino": """output_type: multiple_choice
doc_to_text: "{{label}}"
doc_to_choice: "{{[first, second]}}"
doc_to_target: "{{ending}}"
metric_list: [{metric: acc}]
""",
    # One continuation (LAMBADA's layout): acc is greedy, perplexity per item.
    "tiny_ll": """output_type: loglikelihood
doc_to_text: "{{text.rsplit(' ', 1)[0]}}"
doc_to_target: " {{text.rsplit(' ', 1)[1]}}"
metric_list: [{metric: perplexity}, {metric: acc}]
""",
    # Whole documents (wikitext's layout).
    "tiny_ppl": """output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
metric_list: [{metric: word_perplexity}, {metric: byte_perplexity}, {metric: bits_per_byte}]
""",
    # Greedy generation under two filters (gsm8k's layout).
    "tiny_gen": """output_type: generate_until
doc_to_text: "{{question}}"
doc_to_target: "{{choices.text[0]}}"
generation_kwargs: {until: ["\\n"], max_gen_toks: 4, do_sample: false}
metric_list: [{metric: exact_match}]
filter_list:
  - {name: strict, filter: [{function: take_first}]}
  - {name: lower, filter: [{function: lowercase}, {function: take_first}]}
""",
}
DATA = {
    "tiny_mc": "mc",
    "tiny_mc_text": "mc",
    "tiny_wino": "wino",
    "tiny_ll": "docs",
    "tiny_ppl": "docs",
    "tiny_gen": "mc",
}
LIMITS = {"tiny_mc_text": 12, "tiny_wino": 12, "tiny_ll": 12, "tiny_gen": 8}


def write_data(folder: Path) -> None:
    rng = random.Random(1)
    with (folder / "mc.jsonl").open("w") as handle:
        for i in range(24):
            options = rng.sample(OBJECTS, 4)
            question = f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} what?"
            item = {
                "question": question,
                "choices": {"text": options, "label": list("ABCD")},
                "answerKey": "ABCD"[i % 4],
            }
            handle.write(json.dumps(item) + "\n")
    with (folder / "wino.jsonl").open("w") as handle:
        for i in range(12):
            a, b = rng.sample(SUBJECTS, 2)
            item = {
                "first": f"{a.capitalize()} sees {b} and",
                "second": f"{b.capitalize()} sees {a} and",
                "label": i % 2,
            }
            handle.write(json.dumps({**item, "ending": f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}."}) + "\n")
    with (folder / "docs.jsonl").open("w") as handle:
        for i in range(16):
            handle.write(json.dumps({"text": " ".join(sentences(2 + 3 * (i % 5), seed=100 + i))}) + "\n")
    (folder / "tasks").mkdir()
    for task, body in TASKS.items():
        head = f"task: {task}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    validation: {DATA[task]}.jsonl\n"
        (folder / "tasks" / f"{task}.yaml").write_text(head + "validation_split: validation\n" + body)


def run(model: str, out: str) -> None:
    try:
        import lm_eval
    except ImportError:
        sys.exit("make.py runs lm-eval itself: pip install 'forgetless[lm-eval]' (lm-eval==0.4.13)")
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    tracker = EvaluationTracker(output_path=out)
    results = {}
    for task in TASKS:  # one evaluation per task: each its own --limit, one results file per run as the CLI writes
        done = lm_eval.simple_evaluate(
            model="hf",
            model_args=f"pretrained={model},dtype=float32",
            tasks=[task],
            task_manager=TaskManager(include_path="tasks"),
            device="cpu",
            batch_size=4,
            limit=LIMITS.get(task),
            log_samples=True,
            bootstrap_iters=0,
            evaluation_tracker=tracker,
        )
        samples = done.pop("samples")
        if not results:
            results = done
        else:
            for key in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples"):
                results[key].update(done[key])
        results.setdefault("_samples", {}).update(samples)
    samples = results.pop("_samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])


def main() -> None:
    scratch = Path(tempfile.mkdtemp())
    os.chdir(scratch)  # relative paths: the files name "tiny-base", "mc.jsonl", not this machine's folders
    write_data(scratch)
    tokenizer = build_tokenizer(scratch / "tiny-base")
    build_model(scratch / "tiny-base", len(tokenizer))
    build_tokenizer(scratch / "tiny-tuned")
    build_model(scratch / "tiny-tuned", len(tokenizer), noise=0.3)  # tests/conftest.py's tiny_tuned
    for name, model in (("base", "tiny-base"), ("tuned", "tiny-tuned")):
        run(model, name)
        shutil.rmtree(HERE / name, ignore_errors=True)
        shutil.copytree(scratch / name, HERE / name)
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
