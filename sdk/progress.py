"""Progress on stderr for long work; silent with quiet=True."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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

    def iterable(self, items: Iterable[T]) -> Iterable[T]:
        return items
