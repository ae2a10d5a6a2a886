"""One-line errors for command-line programs, and the project's exit codes.

Anything a user can get wrong (a path, a flag, a file) raises `UserError`; a run that
started and then failed (a NaN loss, out of memory, a full disk) raises `RunFailed`; a
run stopped by a signal after saving its state raises `Stopped`. The entry points run
through `run_cli`, which prints the message on one line, without a traceback, and exits
with 2 for bad input, 1 for a failed run, 128 + the signal's number for a stopped one
(143 for SIGTERM, 130 for SIGINT), 0 for success.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A problem the user can fix; its message is shown as is, without a traceback."""

    label = "error"

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class RunFailed(UserError):
    """A run that could not finish although its input was good (exit status 1)."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=1)


class Stopped(UserError):
    """A run that a signal (SIGTERM, SIGINT) stopped after it saved its state."""

    label = "stopped"

    def __init__(self, message: str, signal_number: int):
        super().__init__(message, exit_code=128 + signal_number)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def fail(message: str, exit_code: int = 2, label: str = "error") -> NoReturn:
    """Print `error: message` (or another label) to stderr and exit."""
    print(f"{label}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(exit_code)


def run_cli(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run `main(argv)`, turning a `UserError` into a one-line message and its exit code."""
    try:
        main(argv)
    except UserError as error:
        fail(" ".join(str(error).split("\n")), error.exit_code, error.label)
    except KeyboardInterrupt:
        fail("interrupted", 130)
