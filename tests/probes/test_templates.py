"""Templates from suites, configs and the command line render sandboxed: they read records, never run code."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgetless.errors import ForgetlessError
from forgetless.probes.templates import render

ESCAPES = [
    "{{ cycler.__init__.__globals__.os.system('id > {out}') }}",
    "{{ joiner.__init__.__globals__.os.system('id > {out}') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ options.append('x') }}",  # the immutable sandbox refuses mutating the record, too
]


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("template", ESCAPES)
def test_a_template_that_reaches_python_internals_is_refused_and_runs_nothing(
    tmp_path: Path, template: str, native: bool
) -> None:
    out = tmp_path / "pwned"
    record = {"question": "q", "options": ["a", "b"]}
    with pytest.raises(ForgetlessError, match=r"probe 'x': template .* was refused") as caught:
        render(template.replace("{out}", str(out)), record, native=native, where="probe 'x'")
    assert "not reach Python internals" in str(caught.value)
    assert not out.exists()
    assert record["options"] == ["a", "b"]


def test_ordinary_templates_still_render_python_values() -> None:
    record = {"question": "Why?", "choices": {"text": ["x", "y"], "label": ["A", "B"]}, "answerKey": "B"}
    assert render("{{ choices.label.index(answerKey) }}", record, native=True, where="w") == 1
    assert render("{{ choices.text }}", record, native=True, where="w") == ["x", "y"]
    assert render("Q: {{ question | upper }}\n", record, native=False, where="w") == "Q: WHY?\n"
    assert render("{{ choices.text | join(', ') }}", record, native=False, where="w") == "x, y"
