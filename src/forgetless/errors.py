"""Errors a user can act on: each names the problem and the fix."""

from __future__ import annotations


class ForgetlessError(Exception):
    """A problem the user can fix. The message says what is wrong and how to fix it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  fix: {fix}")


class ConfigError(ForgetlessError):
    """Several configuration problems, reported all at once."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in {source}:\n{listing}")
