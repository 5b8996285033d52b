"""The categorical head's maths (van den Oord et al. 2016 §2.2; biasing as seed 000 §6): the
one place the constants, the level ↔ value map, the temperature rule and the Gumbel-max draw
live. :class:`melforge.plugins.categorical.head.CategoricalHead` uses the same constants and
formulas in PyTorch; the compiled WaveNet sampler calls these Numba functions per sample, so
the two cannot drift apart.

Levels: ``classes`` values on a uniform grid of [-1, 1], level ``k ∈ {0, …, classes − 1}`` ↦
``2k / (classes − 1) − 1`` (for 256 classes these are the 8-bit μ-law levels of
:mod:`melforge.plugins.representations.mu_law`). A value maps back to the nearest level,
clamped to the grid.

Draw: with uniforms ``u_k`` (one per class) and temperature τ, ``k = argmax_k (l_k / τ + g_k)``
with Gumbel noise ``g_k = −log(−log(clamp(u_k, U_MIN, U_MAX)))`` — the Gumbel-max trick for a
draw from ``softmax(l / τ)`` (the log-softmax normaliser is the same for every ``k`` and is
left out of the argmax). τ = 1 is the model's distribution; ties go to the lowest level.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from melforge.plugins.melnet.compiled_kernels import exp_vec

#: Bounds of the uniforms before the Gumbel transform ``g = −log(−log(u))`` (as the GMM head's),
#: so that ``g`` stays finite: ``g ∈ [−3.3, 16.1]``.
U_MIN = 1e-12
U_MAX = 1.0 - 1e-7

_FASTMATH = {"contract"}


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def value_of(level, classes):
    """Level ``k`` (int) of a grid of ``classes`` levels → its value ``2k / (classes − 1) − 1``
    in [-1, 1], float64 (the multiplication is done first, as in the torch head)."""
    return (level * 2.0) / (classes - 1) - 1.0


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def level_of(value, classes):
    """Value in [-1, 1] → nearest level ``round((value + 1)(classes − 1) / 2)`` clamped to
    ``[0, classes − 1]`` (int); a NaN maps to level 0."""
    k = math.floor((value + 1.0) * (classes - 1) / 2.0 + 0.5)
    if not k >= 0:  # also NaN
        return 0
    return min(int(k), classes - 1)


_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that e·_LN2_HI is exact (fdlibm)
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_MANTISSA = (1 << 52) - 1


@intrinsic
def _bits_of_float(typingctx, x):
    """Reinterpret a float64 as an int64 (a bit cast, vectorisable)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _float_of_bits(typingctx, bits):
    """Reinterpret an int64 as a float64 (a bit cast, vectorisable)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def log_vec(x):
    """``log(x)`` in float64 for positive normal ``x``, from arithmetic only so that loops
    calling it vectorise (libm's ``log`` is a scalar call): ``x = m · 2^e`` with ``m`` in
    ``[√½, √2)`` from the bits, ``log m = 2 atanh(s) = 2 Σ s^(2n+1) / (2n + 1)`` with
    ``s = (m − 1) / (m + 1)``, ``|s| <= 0.172``, to ``n = 10``. Within 3 ulp of ``np.log``;
    used on the Gumbel transform, whose arguments lie in ``[1e-7, 27.7]``."""
    bits = _bits_of_float(x)
    e = (bits >> 52) - 1023
    m = _float_of_bits((bits & _MANTISSA) | (np.int64(1023) << 52))  # [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = 1.0 / 21.0
    p = p * s2 + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    p = p * s2 + 1.0
    ef = float(e)
    return ef * _LN2_HI + (2.0 * s * p + ef * _LN2_LO)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def draw(logits, noise, temperature, score):
    """One level from ``logits: (classes,)`` and ``noise: (classes,)`` uniforms in [0, 1):
    ``argmax_k(l_k / τ + g_k)``, ``g_k = −log(−log(clamp(u_k, U_MIN, U_MAX)))`` (Gumbel-max,
    a draw from ``softmax(l / τ)``; biasing with τ as seed 000 §6). ``score (classes,)``
    float64 is scratch. Returns the level (int); the first of equal scores wins, as
    ``torch.argmax``."""
    classes = logits.shape[0]
    for k in range(classes):  # vectorised: no branch, no libm call
        uk = min(max(float(noise[k]), U_MIN), U_MAX)
        lk = float(logits[k]) if temperature == 1.0 else float(logits[k]) / temperature
        score[k] = lk + -log_vec(-log_vec(uk))
    best = 0
    for k in range(1, classes):
        if score[k] > score[best]:
            best = k
    return best


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def log_prob(logits, level, score):
    """Untempered ``log softmax(logits)[level]`` in nats, float64:
    ``l_k − max(l) − log Σ_j exp(l_j − max(l))`` (the formula of ``torch.log_softmax``);
    ``score (classes,)`` float64 is scratch."""
    classes = logits.shape[0]
    top = -np.inf
    for k in range(classes):
        top = max(top, float(logits[k]))
    for k in range(classes):  # vectorised
        score[k] = exp_vec(float(logits[k]) - top)
    total = 0.0
    for k in range(classes):
        total += score[k]
    return (float(logits[level]) - top) - math.log(total)
