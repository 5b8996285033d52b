"""The GMM head's maths for compiled samplers (seed 000 eq. 2–5; biasing §6): the one place the
constants, clamps and temperature rule live. :class:`melforge.plugins.gmm.head.GMMHead` uses
the same constants in PyTorch; the compiled MelNet sampler calls these Numba functions per
element, so the two can never drift apart.

Parameter layout per element: ``θ̂ = [μ_1..μ_K, σ̂_1..σ̂_K, π̂_1..π̂_K]`` (3K values); noise
layout per element: ``[u_1..u_K, ε]`` (K uniforms for the Gumbel-max choice of a component,
then one standard normal).
"""

from __future__ import annotations

import math

import numpy as np
from numba import carray, njit

from melforge.plugins.head_cfuncs import c_functions

#: ``log σ`` is clamped to this range (σ from 9.1e-4 to 148 in normalised units) so that the
#: density stays finite and sampling cannot overflow, even from an untrained network.
LOG_SIGMA_MIN = -7.0
LOG_SIGMA_MAX = 5.0
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
#: Bounds of the uniforms before the Gumbel transform ``g = -log(-log(u))``.
U_MIN = 1e-12
U_MAX = 1.0 - 1e-7

_FASTMATH = {"contract"}


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def constrain(params, mu, log_sigma, log_pi):
    """``θ̂: (3K,)`` → ``μ``, clamped ``log σ`` and ``log π = log_softmax(π̂)``, each written
    into a ``(K,)`` float64 array (eq. 3–5)."""
    k_comp = mu.shape[0]
    top = -np.inf
    for k in range(k_comp):
        mu[k] = params[k]
        log_sigma[k] = min(max(float(params[k_comp + k]), LOG_SIGMA_MIN), LOG_SIGMA_MAX)
        log_pi[k] = params[2 * k_comp + k]
        top = max(top, log_pi[k])
    total = 0.0
    for k in range(k_comp):
        total += math.exp(log_pi[k] - top)
    norm = top + math.log(total)
    for k in range(k_comp):
        log_pi[k] = log_pi[k] - norm


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def draw(mu, log_sigma, log_pi, noise, temperature, score):
    """One value from the constrained mixture and its noise ``[u_1..u_K, ε]``: Gumbel-max picks
    ``k = argmax(log π'_k + g_k)`` with tempered weights ``log π' = log_softmax(log π / τ)``,
    and the value is ``μ_k + σ_k √τ ε`` (seed 000 §6, Graves 2013 §5). ``score (K,)`` is
    scratch. Returns a float64 (may be non-finite; callers map that to 0)."""
    k_comp = mu.shape[0]
    if temperature != 1.0:
        top = -np.inf
        for k in range(k_comp):
            score[k] = log_pi[k] / temperature
            top = max(top, score[k])
        total = 0.0
        for k in range(k_comp):
            total += math.exp(score[k] - top)
        norm = top + math.log(total)
        for k in range(k_comp):
            score[k] = score[k] - norm
    else:
        for k in range(k_comp):
            score[k] = log_pi[k]
    best = 0
    best_score = -np.inf
    for k in range(k_comp):
        uk = min(max(float(noise[k]), U_MIN), U_MAX)
        s = score[k] + -math.log(-math.log(uk))
        if s > best_score or k == 0:
            best, best_score = k, s
    ls = log_sigma[best] + 0.5 * math.log(temperature) if temperature != 1.0 else log_sigma[best]
    return mu[best] + math.exp(ls) * noise[k_comp]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def log_prob(mu, log_sigma, log_pi, value, score):
    """Untempered ``log Σ_k π_k N(value; μ_k, σ_k)`` in nats by log-sum-exp (eq. 2); ``score``
    ``(K,)`` is scratch."""
    k_comp = mu.shape[0]
    top = -np.inf
    for k in range(k_comp):
        z = (value - mu[k]) * math.exp(-log_sigma[k])
        score[k] = log_pi[k] + (-0.5 * z * z - log_sigma[k] - HALF_LOG_2PI)
        top = max(top, score[k])
    if not np.isfinite(top):
        return top
    total = 0.0
    for k in range(k_comp):
        total += math.exp(score[k] - top)
    return top + math.log(total)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def draw_element(params, noise, temperature, scratch):
    """One element's value from ``θ̂ (3K,)`` and noise ``[u_1..u_K, ε]`` (:func:`constrain`, then
    :func:`draw`); NaN and ±inf become 0, as in ``GMMHead.sample_from_noise``. ``scratch (4K,)``
    float64. The ``draw`` of ``GMMHead.compiled_maths``."""
    k_comp = params.shape[0] // 3
    mu, log_sigma = scratch[:k_comp], scratch[k_comp:2 * k_comp]
    log_pi, score = scratch[2 * k_comp:3 * k_comp], scratch[3 * k_comp:4 * k_comp]
    constrain(params, mu, log_sigma, log_pi)
    value = draw(mu, log_sigma, log_pi, noise, temperature, score)
    return value if np.isfinite(value) else 0.0


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def log_prob_element(params, value, scratch):
    """Untempered log-density (nats) of ``value`` under ``θ̂ (3K,)`` (eq. 2–5); ``scratch (4K,)``
    float64. The ``log_prob`` of ``GMMHead.compiled_maths``."""
    k_comp = params.shape[0] // 3
    mu, log_sigma = scratch[:k_comp], scratch[k_comp:2 * k_comp]
    log_pi, score = scratch[2 * k_comp:3 * k_comp], scratch[3 * k_comp:4 * k_comp]
    constrain(params, mu, log_sigma, log_pi)
    return log_prob(mu, log_sigma, log_pi, float(value), score)


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
