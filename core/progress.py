"""Progress bars for long loops, shown only where a command asks for them.

Library code marks a long loop with :func:`steps`; outside :func:`bars` that costs nothing and
prints nothing (library calls, tests and benchmarks are unaffected). A command wraps its work in
``with progress.bars():`` and every marked loop then shows a tqdm bar on stderr::

    for it in progress.iterate(range(n_iter), "griffin-lim", unit="iter"):
        ...

    with progress.steps(n_iter, "L-BFGS", unit="iter") as bar:   # when a callback advances it
        minimize(..., callback=lambda xk: bar.update())

On a terminal the bar is tqdm's. Off a terminal (stderr to a file or a pipe, a batch job) a
carriage-return bar would show nothing until the end, so :func:`bar` gives a
:class:`LineProgress` instead: one line at the start, one at least every :data:`LINE_SECONDS`
seconds while the work runs (from a timer thread, so a slow step cannot hold it back), and one
at the end. Data preparation, which runs outside any command's bars, uses :func:`ticker`.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

_SHOWN: contextvars.ContextVar[bool] = contextvars.ContextVar("melforge_progress_bars", default=False)


class _Silent:
    """What :func:`steps` yields outside :func:`bars`: ``update`` does nothing."""

    n = 0

    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def bars() -> Iterator[None]:
    """Show the bars of the loops marked with :func:`steps` that run inside the block."""
    token = _SHOWN.set(True)
    try:
        yield
    finally:
        _SHOWN.reset(token)


@contextlib.contextmanager
def steps(total: int, desc: str, unit: str = "it") -> Iterator[Any]:
    """A bar of ``total`` steps named ``desc`` on stderr inside :func:`bars`, else a silent
    stand-in; either way the yielded object has ``update(n=1)``."""
    if not _SHOWN.get():
        yield _Silent()
        return
    shown = bar(total, desc, unit)
    try:
        yield shown
    finally:
        shown.close()


def iterate(iterable: Iterable[Any], desc: str, unit: str = "it") -> Iterable[Any]:
    """``iterable`` itself outside :func:`bars`; inside, the same items through a bar on
    stderr (its length from ``len(iterable)`` when it has one; see :func:`bar`)."""
    if not _SHOWN.get():
        return iterable
    return _through(iterable, bar(len(iterable) if hasattr(iterable, "__len__") else None, desc, unit))


def _through(iterable: Iterable[Any], shown: Any) -> Iterator[Any]:
    try:
        for item in iterable:
            yield item
            shown.update(1)
    finally:
        shown.close()


#: Seconds between two progress lines off a terminal (at most).
LINE_SECONDS = 10.0


def bar(total: int | None, desc: str, unit: str = "it", stream: Any = None) -> Any:
    """A progress display of ``total`` steps on ``stream`` (default stderr): tqdm's bar on a
    terminal, a :class:`LineProgress` off one. Either has ``update(n=1)`` and ``close()``."""
    stream = sys.stderr if stream is None else stream
    if _is_terminal(stream):
        return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True)
    return LineProgress(total, desc, unit, stream=stream)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False


class LineProgress:
    """Progress as whole lines, for a stream that is not a terminal: ``desc: 3/20 frame (15%),
    12 s, 0.25 frame/s`` at the start, at least every ``seconds`` (a timer thread writes it,
    whether or not the work advanced) and at :meth:`close`.

    Args:
        total: steps expected (``None``: unknown).
        seconds: the longest gap between two lines.
        stream: where lines go (flushed after each).
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it", *, seconds: float = LINE_SECONDS,
                 stream: Any = None):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self._stream = sys.stderr if stream is None else stream
        self._clock = time.monotonic
        self._start = self._clock()
        self._stop = threading.Event()
        self._write()
        self._timer = threading.Thread(target=self._tick, args=(float(seconds),), daemon=True)
        self._timer.start()

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps (the next timed line shows it)."""
        self.n += n

    def close(self) -> None:
        """Stop the timer and write the last line (once)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._timer.join()
        self._write(done=True)

    def _tick(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self._write()

    def _write(self, done: bool = False) -> None:
        elapsed = self._clock() - self._start
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        rate = f", {self.n / elapsed:.3g} {self.unit}/s" if elapsed > 0 and self.n else ""
        line = f"{self.desc}: {count} {self.unit}{share}, {elapsed:.0f} s{rate}{', done' if done else ''}"
        try:
            print(line, file=self._stream, flush=True)
        except ValueError:  # the stream was closed under us
            pass


@contextlib.contextmanager
def ticker(total: int | None, desc: str, unit: str = "it") -> Iterator[Any]:
    """Progress of long work that runs outside a command's :func:`bars` (data preparation): a
    :func:`bar` on stderr when the work is announced as long, i.e. always; ``update(n)`` it."""
    shown = bar(total, desc, unit)
    try:
        yield shown
    finally:
        shown.close()


def counted(items: list[Any], desc: str, unit: str = "it") -> Iterator[Any]:
    """The items of ``items``, with their progress always shown on stderr (:func:`bar`): for
    data preparation, long work that runs outside a command's :func:`bars` (decoding, reading,
    rendering a corpus on first use)."""
    return _through(items, bar(len(items), desc, unit))
