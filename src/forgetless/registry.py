"""Named registries for probes and methods: unknown names, and misspelled config keys, fail with a suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel

from forgetless.errors import ForgetlessError

T = TypeVar("T")


def unknown_name_error(kind: str, name: str, known: list[str]) -> ForgetlessError:
    """The error for a name that is not registered, with a 'did you mean' when one is close."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ForgetlessError(f"unknown {kind} '{name}'", f"{hint}known {kind}s: {', '.join(sorted(known))}")


def unknown_key_hint(model: type[Any], loc: tuple[Any, ...]) -> str:
    """For pydantic's "Extra inputs are not permitted" at `loc` under `model`: "; did you mean 'ratio'?",
    or the keys allowed there when none is close (a misspelled key should not need the docs)."""
    *parents, key = loc
    fields = _fields_at(model, parents)
    if fields is None:
        return ""
    close = difflib.get_close_matches(str(key), fields, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if len(fields) > 20:  # a pass-through section (PEFT's LoraConfig): too many to list
        return "; `forgetless ls methods` and `forgetless schema` list the known keys"
    return f"; known keys: {', '.join(sorted(fields))}"


def _fields_at(model: type[Any], path: list[Any]) -> list[str] | None:
    """The field names of the pydantic model reached from `model` along `path` (list indices skipped)."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue  # an item of a list field: its model was found with the field
        field = getattr(current, "model_fields", {}).get(part)
        current = _model_in(field.annotation) if field is not None else None
        if current is None:
            return None
    # A model that passes another library's fields through names them in `passthrough_keys()`.
    extra = current.passthrough_keys() if hasattr(current, "passthrough_keys") else []
    return [*getattr(current, "model_fields", {}), *extra] or None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `DataConfig | None` or `list[StageConfig]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


class Registry(Generic[T]):
    """Maps names to classes. Registering a name twice is a programming error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise unknown_name_error(self.kind, name, list(self._entries))
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
