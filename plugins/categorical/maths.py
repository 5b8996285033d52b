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
from numba import carray, njit

from melforge.core.vector_maths import exp_vec, log_vec
from melforge.plugins.head_cfuncs import c_functions

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


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def draw_element(logits, noise, temperature, score):
    """One element's value (float64, on the grid) from ``logits (classes,)`` and ``noise
    (classes,)``: :func:`draw`, then :func:`value_of`. ``score (classes,)`` float64. The
    ``draw`` of ``CategoricalHead.compiled_maths``."""
    return value_of(draw(logits, noise, temperature, score), logits.shape[0])


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def log_prob_element(logits, value, score):
    """Untempered ``log softmax(logits)[level_of(value)]`` in nats; ``score (classes,)``
    float64. The ``log_prob`` of ``CategoricalHead.compiled_maths``."""
    return log_prob(logits, level_of(float(value), logits.shape[0]), score)


def _draw_c(params, n_params, noise, n_noise, temperature, scratch, n_scratch):
    """:func:`draw_element` over raw pointers (:mod:`melforge.plugins.head_cfuncs`)."""
    return draw_element(carray(params, n_params), carray(noise, n_noise), temperature, carray(scratch, n_scratch))


def _log_prob_c(params, n_params, value, scratch, n_scratch):
    """:func:`log_prob_element` over raw pointers (:mod:`melforge.plugins.head_cfuncs`)."""
    return log_prob_element(carray(params, n_params), value, carray(scratch, n_scratch))


def c_maths(dtype) -> tuple:
    """``(draw, log_prob)`` as C-callable functions for parameters of ``dtype``
    (:func:`melforge.plugins.head_cfuncs.c_functions`)."""
    return c_functions(_draw_c, _log_prob_c, dtype)
