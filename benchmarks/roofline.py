"""Same-run machine limits for the generation benchmarks' roofline columns
(``benchmarks/wavenet_generation.py``, ``benchmarks/sampling.py``): the stream bandwidth of one
and of two cores, the batched matrix-product rate at a row's shapes, and the columns that put
a row's bytes and multiply–adds per step against them.

* :func:`stream_bandwidth` — GB/s reading a float32 buffer far larger than the caches (a
  Numba sum over it, split over ``threads`` cores), best of a few passes.
* :func:`matmul_rate` — GMAC/s of :func:`melforge.plugins.batched_matmul.matmul` (the
  samplers' own product) on one matrix of the row's shape and batch, repeated so that it stays
  in cache (L2 or L3): the compute ceiling at that shape.
* :func:`roofline_cells` — a row's weight bytes and MACs per step, the achieved GB/s and
  GMAC/s as a % of those limits, and which bound is nearer (the larger of
  ``bytes / bandwidth`` and ``MACs / rate``).

    .venv/bin/python benchmarks/roofline.py     # the limits alone
"""

from __future__ import annotations

import time

import numba
import numpy as np
from numba import njit, prange

from melforge.plugins.batched_matmul import FORMATS, matmul, scratch_for, store

#: Bytes of the buffer :func:`stream_bandwidth` reads (8× the 32 MB L3).
STREAM_BYTES = 256 << 20
#: Weights up to this many bytes per step stay in the caches (the 32 MB L3 shared by both
#: cores, half of it counted): such a row is not bound by memory bandwidth.
CACHE_BYTES = 16 << 20


@njit(fastmath=True)
def _sum(part):
    """Sum of a 1-D float32 array, reassociated (vectorised, 8 accumulators)."""
    total = np.float32(0.0)
    for i in range(part.shape[0]):
        total += part[i]
    return total


@njit(parallel=True)
def _read(buf, chunks):
    """Sum of ``buf`` read in ``chunks`` contiguous parts on Numba's threads."""
    n = buf.shape[0]
    step = (n + chunks - 1) // chunks
    parts = np.zeros(chunks)
    for c in prange(chunks):
        parts[c] = _sum(buf[c * step:min(n, (c + 1) * step)])
    return parts.sum()


def stream_bandwidth(threads: int, repeats: int = 5) -> float:
    """GB/s of reading :data:`STREAM_BYTES` of float32 on ``threads`` of Numba's threads (best
    of ``repeats``); the thread count is restored afterwards."""
    buf = np.ones(STREAM_BYTES // 4, np.float32)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        _read(buf, threads)
        best = min(_timed(lambda: _read(buf, threads)) for _ in range(repeats))
    finally:
        numba.set_num_threads(before)
    return STREAM_BYTES / best / 1e9


@njit
def _loop(wt, v, y, scratch, half, reps):
    for _ in range(reps):
        matmul(wt, v, y, scratch, half)


def matmul_rate(n_in: int, n_out: int, batch: int, dtype=np.float32, fmt: str = "fp32", threads: int = 1,
                repeats: int = 3, macs: float = 2e8) -> float:
    """GMAC/s of the samplers' product ``(batch, n_in) @ (n_in, n_out)`` in ``fmt`` on ``threads``
    column blocks, the one matrix reused (in cache), about ``macs`` multiply–adds per timing."""
    rng = np.random.default_rng(0)
    wt = store(rng.standard_normal((n_in, n_out)).astype(dtype) * 0.01, fmt)
    v = rng.standard_normal((batch, n_in)).astype(dtype)
    y = np.zeros((batch, n_out), dtype)
    scratch = scratch_for(n_out, threads)
    reps = max(1, int(macs // (n_in * n_out * batch)))
    _loop(wt, v, y, scratch, FORMATS[fmt], 1)
    best = min(_timed(lambda: _loop(wt, v, y, scratch, FORMATS[fmt], reps)) for _ in range(repeats))
    return n_in * n_out * batch * reps / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


ROOFLINE_HEADER = "MB read/step | GB/s (% stream) | MMAC/step | GMAC/s (% matmul) | bound"


def roofline_cells(bytes_per_step: float, macs_per_step: float, seconds_per_step: float, bandwidth: float,
                   rate: float) -> str:
    """The roofline columns of one row (:data:`ROOFLINE_HEADER`), ``|``-separated: weight
    bytes read per step (MB), the achieved GB/s and its % of ``bandwidth`` (GB/s), MACs per
    step (millions), the achieved GMAC/s and its % of ``rate`` (GMAC/s), and ``memory`` or
    ``compute`` — whichever limit alone would take longer for this step (``compute`` when the
    weights fit in :data:`CACHE_BYTES`: read from cache, the stream bandwidth is no bound)."""
    gbs = bytes_per_step / seconds_per_step / 1e9
    gmacs = macs_per_step / seconds_per_step / 1e9
    memory = bytes_per_step > CACHE_BYTES and bytes_per_step / bandwidth >= macs_per_step / rate
    bound = "memory" if memory else "compute"
    return (f"{bytes_per_step / 1e6:,.1f} | {gbs:.1f} ({100 * gbs / bandwidth:.0f} %) | {macs_per_step / 1e6:,.1f} | "
            f"{gmacs:.1f} ({100 * gmacs / rate:.0f} %) | {bound}")


def main() -> None:
    print(f"stream bandwidth: 1 core {stream_bandwidth(1):.1f} GB/s, 2 cores {stream_bandwidth(2):.1f} GB/s")
    for shape in ((1536, 1024), (512, 1024), (96, 64)):
        for batch in (1, 8, 32):
            print(f"matmul {shape} batch {batch}: {matmul_rate(*shape, batch):.1f} GMAC/s (1 thread), "
                  f"{matmul_rate(*shape, batch, threads=2):.1f} (2)")


if __name__ == "__main__":
    main()
