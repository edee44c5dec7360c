"""Jinja templates that turn a data record into a prompt, a list of choices or a gold index.

Text fields render to strings. List and index fields render to Python values (Jinja's native
environment), so `{{ choices.text }}` is a list and `{{ choices.label.index(answerKey) }}` an int.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.nativetypes import NativeEnvironment

from forgetless.errors import ForgetlessError


def hellaswag_preprocess(text: str) -> str:
    """lm-evaluation-harness's HellaSwag cleaning (tasks/hellaswag/utils.py), so items match."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


FILTERS = {"hellaswag": hellaswag_preprocess}


def _environment(native: bool) -> jinja2.Environment:
    cls = NativeEnvironment if native else jinja2.Environment
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
    except jinja2.UndefinedError as error:
        raise ForgetlessError(
            f"{where}: template {source!r} failed: {error.message}",
            f"the item's fields are: {', '.join(sorted(record))}",
        ) from error
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as error:
        raise ForgetlessError(
            f"{where}: template {source!r} failed: {error}", "check the template against the data"
        ) from error
