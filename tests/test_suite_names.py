"""Built-in probes never bear an lm-evaluation-harness task's name (issue 15): they are named after their sample
through the `{limit}` placeholder, and a built-in probe's old name gets its new name and why."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from forgetless.errors import ConfigError, ForgetlessError
from forgetless.evaluation.results import EvalResult, ModelInfo, ProbeScores, SuiteInfo
from forgetless.probes import Metric
from forgetless.suites import builtin_suites, load_suite
from forgetless.suites.renamed import RENAMED, renamed_hint, renamed_to

# When lm_eval is not installed (it comes with the [dev] extras): the lm-eval names nearest to the built-in probes.
FALLBACK_LM_EVAL_NAMES = {
    *RENAMED,
    *("mmlu", "mmlu_other", "mmlu_social_sciences", "lambada", "lambada_openai", "lambada_standard", "openbookqa"),
    *("sciq", "social_iqa", "commonsense_qa", "copa", "cb", "rte", "mrpc", "sst2", "nq_open", "wikitext", "glue"),
}
# A top-level or listed `task:`, `group:` or `tag:` key of a task YAML, with its value or its list of values.
_KEY = re.compile(r"^[ \t]*(?:-[ \t]+)?(?:task|group|tag):[ \t]*(.*)$\n?((?:[ \t]*-[ \t]*.+\n?)*)", re.M)


def lm_eval_names() -> set[str]:
    """Every task, group and tag name of the installed lm-eval's task YAMLs (about 12,600 in 0.4.13)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        return FALLBACK_LM_EVAL_NAMES
    names: set[str] = set()
    for path in (Path(spec.submodule_search_locations[0]) / "tasks").rglob("*.yaml"):
        for match in _KEY.finditer(path.read_text(encoding="utf-8", errors="ignore")):
            head = match.group(1).strip()
            values = [head] if head else [line.strip()[1:] for line in match.group(2).splitlines()]
            names |= {v.strip().strip("'\"") for v in values}
    return names


@pytest.fixture(scope="module")
def lm_eval() -> set[str]:
    return lm_eval_names()


def test_the_names_are_read_from_lm_eval(lm_eval: set[str]) -> None:
    # The old names really are lm-eval's: the check below would pass vacuously on a list that misses them.
    assert set(RENAMED) <= lm_eval
    assert "mmlu_medical" not in lm_eval and "lambada_ppl" not in lm_eval  # names that stay


@pytest.mark.parametrize("limit", [None, 10])
def test_no_builtin_probe_bears_an_lm_eval_name(lm_eval: set[str], limit: int | None) -> None:
    for suite in builtin_suites():
        names = [p.config.name for p in load_suite(suite, limit=limit).probes]
        assert not set(names) & lm_eval, (suite, limit, sorted(set(names) & lm_eval))


def test_names_say_the_sample_at_every_limit() -> None:
    general = [p.config.name for p in load_suite("general").probes]
    assert general == [
        *("lambada_ppl", "arc_easy_val200", "arc_challenge_val150", "hellaswag_val100", "boolq_val100"),
        *("piqa_val150", "winogrande_val200", "mmlu_stem_test100", "mmlu_humanities_test100", "mmlu_medical"),
        *("triviaqa_val200", "continuations", "canaries"),
    ]
    assert [p.config.name for p in load_suite("quick").probes] == ["lambada_ppl", "arc_easy_val100", "triviaqa_val64"]
    quick10 = [p.config.name for p in load_suite("quick", limit=10).probes]
    assert quick10 == ["lambada_ppl", "arc_easy_val10", "triviaqa_val10"]
    assert load_suite("general", limit=1000).probe("arc_easy_val200").config.limit == 200  # a cap, not a raise
    # The split in the name is the split scored.
    for probe in load_suite("general").probes:
        split = re.search(r"_(val|test)\d+$", probe.config.name)
        if split:
            wanted = {"val": "/validation", "test": "/test"}[split.group(1)]
            assert all(str(s.packaged).endswith(wanted) for s in probe.config.source), probe.config.name


def test_the_limit_placeholder_in_a_suite_file(tmp_path: Path, mc_data: Path) -> None:
    entry = f"kind: choice, source: '{mc_data}', context: '{{{{ question }}}}', choices: '{{{{ choices.text }}}}'"
    path = tmp_path / "mine.yaml"
    path.write_text(f'probes:\n  - {{name: "mcq_val{{limit}}", {entry}, gold: "0", limit: 6}}\n')
    assert [p.config.name for p in load_suite(str(path)).probes] == ["mcq_val6"]
    assert [p.config.name for p in load_suite(str(path), limit=3).probes] == ["mcq_val3"]
    path.write_text(f'probes:\n  - {{name: "mcq_val{{limit}}", {entry}, gold: "0"}}\n')
    assert [p.config.name for p in load_suite(str(path), limit=4).probes] == ["mcq_val4"]  # --limit gives it one
    with pytest.raises(ConfigError, match=r"probes\[0\] \(mcq_val\{limit\}\)\.name: .*give the probe a `limit`"):
        load_suite(str(path))


def test_an_old_name_gets_the_new_one_and_why() -> None:
    quick = load_suite("quick")
    with pytest.raises(ForgetlessError) as error:
        quick.probe("arc_easy")
    assert str(error.value) == (
        "suite 'quick' has no probe 'arc_easy'\n  fix: 'arc_easy' is now 'arc_easy_val100': it scores 100 "
        "validation items, not lm-eval's arc_easy (the whole ARC-Easy test split); its probes: lambada_ppl, "
        "arc_easy_val100, triviaqa_val64"
    )
    general = [p.config.name for p in load_suite("general").probes]
    assert renamed_to("mmlu_stem", general) == "mmlu_stem_test100"
    assert renamed_hint("mmlu_stem", general).startswith("'mmlu_stem' is now 'mmlu_stem_test100': it scores 100 test")
    assert "renamed on 2026-11-30" in renamed_hint("mmlu_stem", ["lambada_ppl"])  # not in this suite: the renaming
    assert renamed_hint("lambada_ppl", []) == renamed_hint("foo", ["foo_val3"]) == ""  # never renamed
    with pytest.raises(ForgetlessError, match="unknown probe 'arc_esay'"):  # any other name: as before
        quick.probe("arc_esay")


def test_an_evaluation_asked_for_an_old_name_says_the_new_one() -> None:
    arc = ProbeScores("arc_easy_val100", "choice", "general", "acc", {"acc": Metric(0.5, True)}, 100, 1.0)
    result = EvalResult(ModelInfo("m", "folder", "f"), SuiteInfo("quick", ""), [arc], {}, 1.0, "", "")
    assert result.probe("arc_easy_val100") is arc
    with pytest.raises(KeyError, match="no probe 'arc_easy' in this evaluation; 'arc_easy' is now 'arc_easy_val100'"):
        result.probe("arc_easy")
    with pytest.raises(KeyError, match="no probe 'triviaqa' in this evaluation; built-in probes named after lm-eval"):
        result.probe("triviaqa")
