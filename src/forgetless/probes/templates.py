"""Jinja templates that turn a data record into a prompt, a list of choices or a gold index.

Text fields render to strings. List and index fields render to Python values (Jinja's native
environment), so `{{ choices.text }}` is a list and `{{ choices.label.index(answerKey) }}` an int.

Templates come from suite and config files and the command line: text a user may have been sent.
They render in Jinja's immutable sandbox (as transformers renders chat templates), so a template
can read its record but not reach Python internals (`cycler.__init__.__globals__.os`) or mutate data.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.nativetypes import NativeEnvironment
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from forgetless.errors import ForgetlessError


def hellaswag_preprocess(text: str) -> str:
    """lm-evaluation-harness's HellaSwag cleaning (tasks/hellaswag/utils.py), so items match."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


FILTERS = {"hellaswag": hellaswag_preprocess}


class _SandboxedNativeEnvironment(ImmutableSandboxedEnvironment, NativeEnvironment):
    """The sandbox's attribute and call checks with the native environment's Python-value output."""


def _environment(native: bool) -> jinja2.Environment:
    cls = _SandboxedNativeEnvironment if native else ImmutableSandboxedEnvironment
    env = cls(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


_TEXT_ENV = _environment(native=False)
_NATIVE_ENV = _environment(native=True)


@lru_cache(maxsize=256)
def compile_template(source: str, native: bool) -> jinja2.Template:
    """Compile once; a syntax error names the template."""
    try:
        return (_NATIVE_ENV if native else _TEXT_ENV).from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise ForgetlessError(f"template {source!r} is not valid Jinja: {error}", "fix the template") from error


def render(source: str, record: dict[str, Any], *, native: bool, where: str) -> Any:
    """Render a template on one record; a missing field names the field and the fields present."""
    try:
        return compile_template(source, native).render(**record)
    except SecurityError as error:
        raise ForgetlessError(
            f"{where}: template {source!r} was refused: {error}",
            "a template may read the item's fields and call plain methods such as str.upper or list.index, "
            "not reach Python internals",
        ) from error
    except jinja2.UndefinedError as error:
        raise ForgetlessError(
            f"{where}: template {source!r} failed: {error.message}",
            f"the item's fields are: {', '.join(sorted(record))}",
        ) from error
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as error:
        raise ForgetlessError(
            f"{where}: template {source!r} failed: {error}", "check the template against the data"
        ) from error


def literal_lines(source: str, min_chars: int = 3) -> list[str]:
    """The literal text of a template, line by line, stripped: what every rendered record repeats.

    'Review: {{ sentence }}\\nSentiment: {{ label }}' -> ['Review:', 'Sentiment:']. A fine-tune on such
    records learns these lines; seen in generations for unrelated prompts, they are its template leaking
    (the generation probe's `leak` markers). Lines shorter than `min_chars` or without a letter are left out.
    """
    try:
        tokens = list(_TEXT_ENV.lex(source))
    except jinja2.TemplateSyntaxError as error:
        raise ForgetlessError(f"template {source!r} is not valid Jinja: {error}", "fix the template") from error
    lines = [line.strip() for _, kind, text in tokens if kind == "data" for line in text.splitlines()]
    found = [line for line in lines if len(line) >= min_chars and any(c.isalpha() for c in line)]
    return list(dict.fromkeys(found))
