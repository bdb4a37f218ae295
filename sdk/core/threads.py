"""The one check on a thread count, wherever one is accepted (CLI, API, runtimes, agent)."""

from __future__ import annotations

import os

from pocketbert.core.errors import UserError

THREADS_PER_CORE = 4  # more than this many threads per core only oversubscribes


def max_threads() -> int:
    return max(1, (os.cpu_count() or 1) * THREADS_PER_CORE)


def check_threads(threads: int | None, what: str = "--threads") -> int | None:
    """``threads`` if it is None (the runtime's default) or 1..cores x 4; else a UserError."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise UserError(
            f"{what} must be a whole number, not {threads!r}; give 1 to {max_threads()}"
        )
    if not 1 <= threads <= max_threads():
        raise UserError(
            f"{what} {threads} is out of range; give 1 to {max_threads()} "
            f"({os.cpu_count() or 1} cores here x {THREADS_PER_CORE})"
        )
    return threads
