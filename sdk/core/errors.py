"""The two kinds of failure: bad input from the user, and everything else (a bug)."""

from __future__ import annotations


class UserError(Exception):
    """Something about the input is wrong. The message says what, and what would be right.

    The CLI prints it on one line and exits with code 2, without a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def choices(valid) -> str:
    """Format a list of valid choices for an error message."""
    return ", ".join(sorted(str(v) for v in valid))


def first_line(exc: BaseException, default: str | None = None) -> str:
    """The first line of an exception's message (or ``default``, else its type name)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else (default or type(exc).__name__)
