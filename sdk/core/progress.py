"""Progress on stderr for long work; silent with quiet=True."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class Progress:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    @contextmanager
    def step(self, message: str):
        start = time.perf_counter()
        self.say(f"… {message}")
        yield
        self.say(f"✓ {message} ({time.perf_counter() - start:.1f}s)")

    def iterate(self, items: list[T], what: str, name: Callable[[T], str]) -> Iterator[T]:
        total = len(items)
        for i, item in enumerate(items, 1):
            start = time.perf_counter()
            self.say(f"[{i}/{total}] {what} {name(item)}")
            yield item
            self.say(f"[{i}/{total}] {name(item)} done in {time.perf_counter() - start:.1f}s")


@contextmanager
def native_output_to(log: Path):
    """Send file descriptors 1 and 2 to ``log`` (or os.devnull) while chatty libraries run.

    litert-torch, TensorFlow, XNNPACK and ExecuTorch print progress and diagnostics from
    Python and from C++; our own progress stays readable, and the log keeps theirs.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        fds = [sys.stdout.fileno(), sys.stderr.fileno()]
    except (AttributeError, OSError, ValueError):  # streams replaced (pytest capture, IDEs)
        fds = []
    saved = [os.dup(fd) for fd in fds]
    with log.open("ab") as sink:
        try:
            for fd in fds:
                os.dup2(sink.fileno(), fd)
            yield log
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            for fd, old in zip(fds, saved, strict=True):
                os.dup2(old, fd)
                os.close(old)
