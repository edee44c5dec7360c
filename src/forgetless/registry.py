"""Named registries for probes (and later methods): unknown names fail with a suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from forgetless.errors import ForgetlessError

T = TypeVar("T")


def unknown_name_error(kind: str, name: str, known: list[str]) -> ForgetlessError:
    """The error for a name that is not registered, with a 'did you mean' when one is close."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ForgetlessError(f"unknown {kind} '{name}'", f"{hint}known {kind}s: {', '.join(sorted(known))}")


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
