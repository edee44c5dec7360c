"""Suites: built-in ones load offline; every problem in a suite file is reported at once."""

from __future__ import annotations

import pytest

from forgetless.errors import ConfigError, ForgetlessError
from forgetless.registry import Registry
from forgetless.suites import builtin_suites, load_suite


def test_builtin_suites_load_and_build_items() -> None:
    assert {"general", "quick"} <= set(builtin_suites())
    general = load_suite("general")
    names = [p.config.name for p in general.probes]
    assert names[:2] == ["lambada_ppl", "arc_easy_val200"]
    assert {"hellaswag_val100", "boolq_val100", "piqa_val150", "winogrande_val200", "mmlu_stem_test100"} <= set(names)
    assert "canaries" in names
    # Every packaged probe renders its first items (templates match the packaged data).
    small = load_suite("general", limit=2)
    for probe in small.probes:
        if probe.config.kind == "choice":
            items = probe.build_items()
            assert len(items) == 2 and all(0 <= i.gold < len(i.requests) for i in items)


def test_hellaswag_items_are_cleaned_like_lm_eval() -> None:
    (item,) = load_suite("general", limit=1).probe("hellaswag_val1").build_items()
    context, first = item.requests[0]
    assert "[" not in context and ": " in context and first.startswith(" ")


def test_unknown_suite_suggests_a_name() -> None:
    with pytest.raises(ForgetlessError, match="(?s)unknown suite 'genral'.*did you mean 'general'"):
        load_suite("genral")


def test_all_problems_reported_at_once(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "bad.yaml"
    path.write_text(
        """name: bad
colour: blue
probes: []
"""
    )
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['colour'\]"):
        load_suite(str(path))
    path.write_text(
        """name: bad
probes:
  - {name: a, kind: perplexty, source: x.txt}
  - {name: b, kind: choice, source: x.jsonl, context: c, choices: c, gold: "0", limit: 0, colour: red}
  - {name: b, kind: perplexity, source: x.txt}
  - {kind: perplexity, source: x.txt}
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_suite(str(path))
    text = str(caught.value)
    assert "4 problem(s)" in text
    assert "probes[0] (a).kind: unknown probe kind 'perplexty'" in text and "did you mean 'perplexity'" in text
    assert "probes[1] (b).limit: Input should be greater than 0 (value: 0)" in text
    assert "probes[1] (b).colour: Extra inputs are not permitted" in text
    assert "probes[3].name: Field required" in text


def test_duplicate_probe_names(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "dup.yaml"
    path.write_text(
        "probes:\n  - {name: a, kind: perplexity, source: x.txt}\n  - {name: a, kind: perplexity, source: y.txt}\n"
    )
    with pytest.raises(ConfigError, match="'a' is used twice"):
        load_suite(str(path))


def test_missing_suite_file() -> None:
    with pytest.raises(ForgetlessError, match="suite file 'nope.yaml' does not exist"):
        load_suite("nope.yaml")


def test_registry_rejects_duplicates_and_suggests() -> None:
    registry: Registry[int] = Registry("thing")
    registry.register("alpha")(1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("alpha")(2)
    with pytest.raises(ForgetlessError, match="did you mean 'alpha'"):
        registry.get("alpah")
