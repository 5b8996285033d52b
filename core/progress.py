"""Progress bars for long loops, shown only where a command asks for them.

Library code marks a long loop with :func:`steps`; outside :func:`bars` that costs nothing and
prints nothing (library calls, tests and benchmarks are unaffected). A command wraps its work in
``with progress.bars():`` and every marked loop then shows a tqdm bar on stderr::

    for it in progress.iterate(range(n_iter), "griffin-lim", unit="iter"):
        ...

    with progress.steps(n_iter, "L-BFGS", unit="iter") as bar:   # when a callback advances it
        minimize(..., callback=lambda xk: bar.update())
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterable, Iterator
from typing import Any

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
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def iterate(iterable: Iterable[Any], desc: str, unit: str = "it") -> Iterable[Any]:
    """``iterable`` itself outside :func:`bars`; inside, the same items through a tqdm bar on
    stderr (its length from ``len(iterable)`` when it has one)."""
    if not _SHOWN.get():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
