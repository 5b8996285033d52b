"""Batched matrix products for the compiled samplers: every weight row is read once per call
for all streams of a batch (a matrix–matrix product ``Y += V W^T``), with weights stored in
float32/float64 or at 16 bits (fp16 or bf16 bit patterns in ``uint16``, accumulated in
float32).

Layout: ``wt (n_in, n_out)`` is the transposed weight ``W^T``, row-major, so that each update
``y[b, :] += Σ_{k∈block} wt[k, :] · v[b, k]`` is a contiguous loop over ``n_out`` that LLVM
vectorises without reassociating sums (``fastmath={"contract"}`` only fuses multiply–adds).
Four input rows are taken per pass (a quarter of the loads and stores of ``y``) and four
streams per pass share the loaded weight vectors (each weight element is loaded from cache once
per four streams and from memory once per call); the sum for one output is
``y + (w_k v_k + w_{k+1} v_{k+1} + w_{k+2} v_{k+2} + w_{k+3} v_{k+3})`` in the order of ``k``,
for every stream and batch size, so a stream's result does not depend on the batch it is in.

16-bit weights: :func:`to_bits` stores them (round to nearest even), :func:`decode_row` turns
one row back into float32 in a scratch buffer per pass — exact for bf16 (the top half of a
float32), and for fp16 by the exponent-rebias trick (``(h & 0x7fff) << 13`` as float32 times
``2^112``; fp16 infinities and NaNs are not kept, weights never hold them).

Threads: :func:`matmul_acc_par` splits the output columns into ``chunks`` contiguous blocks
run in a ``prange`` (Numba's thread pool, ``NUMBA_NUM_THREADS``); each block decodes and reads
only its own columns, so the result is bit-identical to :func:`matmul_acc`.
"""

from __future__ import annotations

import time

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

_FASTMATH = {"contract"}

#: Codes of the weight storage formats (the ``half`` argument of the kernels).
FP32, FP16, BF16 = 0, 1, 2
FORMATS = {"fp32": FP32, "fp16": FP16, "bf16": BF16}
_TWO_112 = np.float32(2.0**112)


def to_bits(w: np.ndarray, fmt: str) -> np.ndarray:
    """Float weights → the ``uint16`` bit patterns of ``fmt`` (``"fp16"`` or ``"bf16"``), round
    to nearest even; same shape. bf16 keeps float32's range (8 exponent bits, 7 mantissa bits);
    fp16 has 10 mantissa bits but saturates above 65504 and loses precision below 6e-5.

    Raises:
        ValueError: another ``fmt``.
    """
    w32 = np.ascontiguousarray(w, dtype=np.float32)
    if fmt == "fp16":
        return w32.astype(np.float16).view(np.uint16)
    if fmt == "bf16":
        bits = w32.view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round half to even
        return rounded.astype(np.uint16)
    raise ValueError(f"weights: 16-bit format must be fp16 or bf16, got {fmt!r}")


def from_bits(bits: np.ndarray, fmt: str) -> np.ndarray:
    """The float32 values of :func:`to_bits`'s bit patterns (numpy; for tests and fidelity)."""
    if fmt == "fp16":
        return bits.view(np.float16).astype(np.float32)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def decode_row(wt, k, out, half, o0, o1):  # pragma: no cover - replaced by the overload below
    """Row ``k`` of ``wt`` over columns ``o0 … o1 − 1`` as a 1-D float array (see the overload)."""
    raise NotImplementedError


@overload(decode_row, inline="always")
def _decode_row(wt, k, out, half, o0, o1):
    """Float ``wt``: the row itself (``out`` unused). ``uint16`` ``wt``: columns ``o0 … o1 − 1``
    of row ``k`` decoded into ``out (n_out,)`` float32 (bf16 for ``half == BF16``, else fp16),
    and ``out`` returned."""
    if isinstance(wt.dtype, types.Float):
        def impl(wt, k, out, half, o0, o1):
            return wt[k]
        return impl

    def impl_bits(wt, k, out, half, o0, o1):
        bits = out.view(np.uint32)
        row = wt[k]
        if half == BF16:
            for o in range(o0, o1):
                bits[o] = np.uint32(row[o]) << np.uint32(16)
        else:
            for o in range(o0, o1):
                h = np.uint32(row[o])
                bits[o] = ((h & np.uint32(0x7FFF)) << np.uint32(13)) | ((h & np.uint32(0x8000)) << np.uint32(16))
            for o in range(o0, o1):
                out[o] = out[o] * _TWO_112
        return out
    return impl_bits


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _cols(wt, v, y, scratch, half, o0, o1):
    """``y[:, o0:o1] += v @ wt[:, o0:o1]`` with ``v (B, n_in)``, ``y (B, n_out)``;
    ``scratch (4, n_out)`` float32 (16-bit weights only)."""
    n_in = wt.shape[0]
    batch = v.shape[0]
    o0, o1 = np.uint64(o0), np.uint64(o1)  # unsigned: no negative-index wrap-around, so it vectorises
    for k in range(0, n_in - 3, 4):
        r0 = decode_row(wt, k, scratch[0], half, o0, o1)
        r1 = decode_row(wt, k + 1, scratch[1], half, o0, o1)
        r2 = decode_row(wt, k + 2, scratch[2], half, o0, o1)
        r3 = decode_row(wt, k + 3, scratch[3], half, o0, o1)
        b = 0
        while b + 3 < batch:  # four streams share each loaded weight vector
            y0, y1, y2, y3 = y[b], y[b + 1], y[b + 2], y[b + 3]
            a00, a01, a02, a03 = v[b, k], v[b, k + 1], v[b, k + 2], v[b, k + 3]
            a10, a11, a12, a13 = v[b + 1, k], v[b + 1, k + 1], v[b + 1, k + 2], v[b + 1, k + 3]
            a20, a21, a22, a23 = v[b + 2, k], v[b + 2, k + 1], v[b + 2, k + 2], v[b + 2, k + 3]
            a30, a31, a32, a33 = v[b + 3, k], v[b + 3, k + 1], v[b + 3, k + 2], v[b + 3, k + 3]
            for o in range(o0, o1):
                w0, w1, w2, w3 = r0[o], r1[o], r2[o], r3[o]
                y0[o] += w0 * a00 + w1 * a01 + w2 * a02 + w3 * a03
                y1[o] += w0 * a10 + w1 * a11 + w2 * a12 + w3 * a13
                y2[o] += w0 * a20 + w1 * a21 + w2 * a22 + w3 * a23
                y3[o] += w0 * a30 + w1 * a31 + w2 * a32 + w3 * a33
            b += 4
        while b < batch:
            yb = y[b]
            a0, a1, a2, a3 = v[b, k], v[b, k + 1], v[b, k + 2], v[b, k + 3]
            for o in range(o0, o1):
                yb[o] += r0[o] * a0 + r1[o] * a1 + r2[o] * a2 + r3[o] * a3
            b += 1
    for k in range(n_in - n_in % 4, n_in):
        r0 = decode_row(wt, k, scratch[0], half, o0, o1)
        for b in range(batch):
            yb = y[b]
            a0 = v[b, k]
            for o in range(o0, o1):
                yb[o] += r0[o] * a0


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def matmul_acc(wt, v, y, scratch, half):
    """``y (B, n_out) += v (B, n_in) @ W^T`` with ``wt = W^T (n_in, n_out)`` float32/float64
    (the dtype of ``v`` and ``y``) or ``uint16`` bit patterns of format ``half`` (``FP16`` or
    ``BF16``, accumulated in float32); ``scratch (4, n_out)`` float32 (unused for float
    weights). One thread."""
    _cols(wt, v, y, scratch, half, 0, wt.shape[1])


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", parallel=True)
def matmul_acc_par(wt, v, y, scratch, half):
    """:func:`matmul_acc` with the output columns split into ``scratch.shape[0]`` blocks (a
    multiple of 16 columns each) run on Numba's threads; ``scratch (chunks, 4, n_out)``.
    Bit-identical to :func:`matmul_acc`."""
    n_out = wt.shape[1]
    chunks = scratch.shape[0]
    step = ((n_out + chunks - 1) // chunks + 15) // 16 * 16
    for c in prange(chunks):
        o0 = min(c * step, n_out)
        o1 = min(o0 + step, n_out)
        _cols(wt, v, y, scratch[c], half, o0, o1)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def matmul(wt, v, y, scratch, half):
    """:func:`matmul_acc` on one thread for ``scratch (1, 4, n_out')``, else
    :func:`matmul_acc_par` over ``scratch.shape[0]`` column blocks (:func:`scratch_for`;
    ``n_out' >= n_out``). Not inlined: a separately compiled (and disk-cached) function."""
    if scratch.shape[0] > 1:
        matmul_acc_par(wt, v, y, scratch, half)
    else:
        matmul_acc(wt, v, y, scratch[0], half)


def store(w: np.ndarray, fmt: str) -> np.ndarray:
    """A weight matrix as a kernel reads it: unchanged for ``"fp32"`` (the model's dtype), else
    :func:`to_bits`. Contiguous.

    Raises:
        ValueError: an unknown ``fmt``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"weights: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return np.ascontiguousarray(w) if fmt == "fp32" else to_bits(w, fmt)


#: Threads chosen per (matrix shape, batch, format, dtype, threads asked): measured once a process.
_CHOICES: dict[tuple, int] = {}
#: Below this many multiply–adds per product the threads' start-up outweighs any gain.
MIN_PARALLEL_MACS = 1 << 18
#: Two threads must be this much faster than one to be chosen (the machine may be shared, and
#: a wrong choice of two threads costs far more than a missed gain).
MIN_GAIN = 1.25


def scratch_for(n_out: int, chunks: int) -> np.ndarray:
    """The decode scratch :func:`matmul` takes: ``(chunks, 4, n_out)`` float32."""
    return np.zeros((max(int(chunks), 1), 4, max(int(n_out), 1)), np.float32)


def choose_chunks(wt: np.ndarray, batch: int, dtype, fmt: str, threads) -> int:
    """How many column blocks (threads) :func:`matmul` should use for products with ``wt`` at
    ``batch`` streams: ``threads`` if an int, else (``"auto"``) the faster of 1 and
    ``numba.get_num_threads()`` measured here on this very product (best of 15 runs each, in
    three interleaved rounds; two threads kept only if :data:`MIN_GAIN` × faster), 1 below
    :data:`MIN_PARALLEL_MACS`.
    Memoised per shape, batch, format and dtype in this process.

    Raises:
        ValueError: ``threads`` neither ``"auto"`` nor a positive int.
    """
    if threads != "auto":
        if int(threads) < 1:
            raise ValueError(f"threads: must be 'auto' or >= 1, got {threads!r}")
        return int(threads)
    most = numba.get_num_threads()
    n_in, n_out = wt.shape
    if most < 2 or n_in * n_out * batch < MIN_PARALLEL_MACS:
        return 1
    key = (wt.shape, wt.dtype.str, batch, fmt, np.dtype(dtype).str, most)
    if key not in _CHOICES:
        v = np.ones((batch, n_in), dtype)
        y = np.zeros((batch, n_out), dtype)
        half = FORMATS[fmt]
        best = {}
        for chunks in (1, most) * 3:  # interleaved, so that a burst of load hits both
            scratch = scratch_for(n_out, chunks)
            matmul(wt, v, y, scratch, half)
            for _ in range(5):
                start = time.perf_counter()
                matmul(wt, v, y, scratch, half)
                best[chunks] = min(best.get(chunks, np.inf), time.perf_counter() - start)
        _CHOICES[key] = most if best[1] > MIN_GAIN * best[most] else 1
    return _CHOICES[key]
