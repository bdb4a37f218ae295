"""Progress on stderr for long work; silent with quiet=True.

``progress_bar`` is a tqdm bar on a terminal; when stderr is a file or a pipe (CI logs,
``2> log``) it is a few plain lines instead of hundreds of carriage-return redraws.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

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

    def iterate(
        self,
        items: list[T],
        what: str,
        name: Callable[[T], str],
        heartbeat_s: float | None = None,
    ) -> Iterator[T]:
        """Yield each item with a line before and after; with ``heartbeat_s``, a line every
        that many seconds while an item is worked on (long exports stay visibly alive)."""
        total = len(items)
        for i, item in enumerate(items, 1):
            start = time.perf_counter()
            self.say(f"[{i}/{total}] {what} {name(item)}")
            with self._heartbeat(f"[{i}/{total}] {name(item)}", heartbeat_s):
                yield item
            self.say(f"[{i}/{total}] {name(item)} done in {time.perf_counter() - start:.1f}s")

    @contextmanager
    def _heartbeat(self, label: str, every_s: float | None):
        if self.quiet or not every_s:
            yield
            return
        import threading

        # a copy of stderr taken now: the work may send fd 2 to its log (native_output_to)
        try:
            stream = os.fdopen(os.dup(sys.stderr.fileno()), "w")
        except (AttributeError, OSError, ValueError):  # no real fd (e.g. captured)
            stream = None
        out = stream or sys.stderr
        start, stop = time.perf_counter(), threading.Event()

        def beat() -> None:
            while not stop.wait(every_s):
                print(
                    f"{label}: working ({time.perf_counter() - start:.0f}s)", file=out, flush=True
                )

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            if stream is not None:
                stream.close()


class PlainBar:
    """A progress "bar" for a non-terminal stderr: one line at every tenth of the work.

    Offers the part of tqdm's interface the training loop uses (update, set_postfix,
    clear, refresh, close, iteration).
    """

    LINES = 10

    def __init__(
        self,
        iterable: Any = None,
        *,
        total: int | None = None,
        initial: int = 0,
        desc: str | None = None,
        unit: str = "it",
        disable: bool = False,
        stream: Any = None,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.disable, self.stream = disable, stream
        self.postfix = ""
        self._shown = self._tenth()

    def _tenth(self) -> int:
        return self.n * self.LINES // self.total if self.total else 0

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        tenth = self._tenth()
        if tenth > self._shown or (self.n == self.total and self._shown < self.LINES):
            self._shown = tenth
            self._line()

    def _line(self) -> None:
        if self.disable:
            return
        head = f"{self.desc}: " if self.desc else ""
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        pct = f" ({self.n / self.total:.0%})" if self.total else ""
        tail = f"  {self.postfix}" if self.postfix else ""
        print(f"{head}{count} {self.unit}{pct}{tail}", file=self.stream or sys.stderr, flush=True)

    def clear(self) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)


def is_terminal(stream: Any = None) -> bool:
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(iterable: Any = None, **options: Any):
    """A tqdm bar on a terminal, a :class:`PlainBar` (a line per tenth) anywhere else.

    ``options``: total, initial, desc, unit, disable (and, on a terminal, other tqdm options).
    """
    if is_terminal():
        from tqdm.auto import tqdm

        return tqdm(iterable, dynamic_ncols=True, leave=False, **options)
    plain = {
        k: v for k, v in options.items() if k in ("total", "initial", "desc", "unit", "disable")
    }
    return PlainBar(iterable, **plain)


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
