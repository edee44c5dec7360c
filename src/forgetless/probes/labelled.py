"""Labelled examples for classification: text (and an optional second text) with an integer class.

Templates are Jinja over each record, as in probes: `text: "{{ sentence1 }}"`, `text_pair:
"{{ sentence2 }}"` for sentence pairs (RTE, MRPC), `label: "{{ label }}"`. A label must render to a
class index: an int, a bool (False = 0, True = 1) or a string of digits. Checking the labels against
the head (`check_labels`) happens before any training, with the offending values named.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import jinja2

from forgetless.errors import ForgetlessError
from forgetless.probes.templates import render


@dataclass
class Labelled:
    """Parallel lists; `pairs` is None for single-text tasks and `labels` None when no label is asked for."""

    texts: list[str]
    pairs: list[str] | None
    labels: list[int] | None

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices: list[int]) -> Labelled:
        pick = lambda values: None if values is None else [values[i] for i in indices]  # noqa: E731
        return Labelled([self.texts[i] for i in indices], pick(self.pairs), pick(self.labels))


def class_index(value: Any, where: str, template: str) -> int:
    """A rendered label as a class index; anything else is an error that says how to map it."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ForgetlessError(
        f"{where}: label template {template!r} gave {value!r}, not a class index",
        'make `label` render to an integer 0..num_labels-1, e.g. "{{ 1 if answer else 0 }}" or '
        "\"{{ ['negative', 'positive'].index(label) }}\"",
    )


def build_labelled(
    records: Any, indices: list[int], text: str, text_pair: str | None, label: str | None, what: str
) -> Labelled:
    """Render every selected record; `what` names the data in errors (a probe, the task, keep data)."""
    texts, pairs, labels = [], [] if text_pair else None, [] if label else None
    for index in indices:
        record, where = records[index], f"{what}, item {index}"
        texts.append(str(render(text, record, native=False, where=where)))
        if pairs is not None:
            pairs.append(str(render(text_pair, record, native=False, where=where)))
        if labels is not None:
            value = render(label, record, native=True, where=where)
            if isinstance(value, jinja2.Undefined):  # a bare `{{ field }}` of a missing field renders, undefined
                raise ForgetlessError(
                    f"{where}: label template {label!r} names a field the item does not have",
                    f"the item's fields are: {', '.join(sorted(record))}",
                )
            labels.append(class_index(value, where, label))
    return Labelled(texts, pairs, labels)


def check_labels(labels: list[int], num_labels: int, what: str) -> None:
    """Every label must be a class of an n-way head: 0 <= label < num_labels.

    Raises:
        ForgetlessError: naming the labels outside the range and how many items carry them.
    """
    counts = Counter(labels)
    outside = sorted(v for v in counts if not 0 <= v < num_labels)
    if outside:
        shown = ", ".join(f"{v} ({counts[v]} items)" for v in outside[:5])
        raise ForgetlessError(
            f"{what}: labels {shown} do not fit a head of {num_labels} labels (classes 0..{num_labels - 1})",
            f"set num_labels to at least {max(counts) + 1}, or map the labels to 0..{num_labels - 1} in `label`",
        )


def infer_num_labels(labels: list[int], what: str) -> int:
    """The head size the labels ask for: the largest class + 1 (at least 2)."""
    if not labels:
        raise ForgetlessError(f"{what} has no labelled items", "point the data at records with a label")
    if min(labels) < 0:
        raise ForgetlessError(f"{what}: label {min(labels)} is negative", "map the labels to 0..n-1 in `label`")
    return max(2, max(labels) + 1)
