"""One-line errors for command-line programs.

Anything a user can get wrong (a path, a flag, a file) raises `UserError`; the entry
points run through `run_cli`, which prints the message on one line and exits with
status 2 instead of showing a traceback.
"""

from __future__ import annotations

import sys
from typing import Callable, NoReturn


class UserError(Exception):
    """A problem the user can fix; its message is shown as is, without a traceback."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = 2) -> NoReturn:
    """Print `error: message` to stderr and exit."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(exit_code)


def run_cli(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run `main(argv)`, turning a `UserError` into a one-line message and its exit code."""
    try:
        main(argv)
    except UserError as error:
        fail(" ".join(str(error).split("\n")), error.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
