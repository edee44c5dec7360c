"""Every command is wrapped so that a user's mistake reads as a message and an exit code, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from forgetless.cli.exit_codes import BAD_INPUT
from forgetless.errors import ForgetlessError


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ForgetlessError into a clear message and exit code 2 (BAD_INPUT), not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ForgetlessError as error:
            from forgetless.report.terminal import err, say

            say(("error:", "bold red"), " ", str(error), console=err)  # plain text: paths may hold "[/b]"
            sys.exit(BAD_INPUT)

    return wrapper
