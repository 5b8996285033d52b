"""Unconstrained L-BFGS for waveform-sized problems (Nocedal & Wright 2006, Algorithms 7.4–7.5).

scipy's L-BFGS-B spent about 60 ms per iteration of its own on a 130 000-sample waveform on a
busy 2-core machine, ten times the STFT loss: its vector products go through multi-threaded
OpenBLAS, which stalls when the cores are taken. This is the plain two-loop recursion with a
backtracking Armijo line search, its vector products single-threaded Numba loops:
O(memory · samples) work per iteration, one loss evaluation per iteration when the unit step is
accepted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
from numba import njit

#: Sufficient-decrease constant of the Armijo condition.
C1 = 1e-4
#: Step halvings (with quadratic interpolation) before giving up.
MAX_BACKTRACKS = 20


@njit(cache=True)
def dot(a, b):
    """``Σ a_i b_i`` of two ``(n,)`` float64 vectors (single-threaded)."""
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


@njit(cache=True)
def axpy(alpha, x, y):
    """``y += alpha · x`` in place, ``(n,)`` float64 vectors."""
    for i in range(x.shape[0]):
        y[i] += alpha * x[i]


def _norm(a: np.ndarray) -> float:
    return float(np.sqrt(dot(a, a)))


def lbfgs(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    n_iter: int,
    memory: int = 10,
) -> np.ndarray:
    """Minimise ``fun`` from ``x0`` with at most ``n_iter`` L-BFGS iterations.

    Args:
        fun: ``x (n,) → (loss, gradient (n,))``.
        x0: ``(n,)`` float64 start.
        n_iter: iteration budget (each costs one ``fun`` call unless the line search backtracks).
        memory: number of curvature pairs kept.

    Returns:
        ``(n,)`` float64 iterate with the lowest loss seen (the last accepted one).
    """
    x = np.array(x0, dtype=np.float64)
    if n_iter <= 0:
        return x
    f, g = fun(x)
    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)  # (s, y, 1/yᵀs)
    for _ in range(n_iter):
        gnorm = _norm(g)
        if gnorm == 0.0 or not np.isfinite(f):
            break
        d = _direction(g, pairs, gnorm)
        slope = dot(g, d)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            pairs.clear()
            d = -g / gnorm
            slope = -gnorm
        step = 1.0
        for _ in range(MAX_BACKTRACKS):
            x_new = x + step * d
            f_new, g_new = fun(x_new)
            if np.isfinite(f_new) and f_new <= f + C1 * step * slope:
                break
            # minimiser of the quadratic through f, slope and f_new, kept in [0.1, 0.5] · step
            denom = 2.0 * (f_new - f - slope * step)
            trial = -slope * step * step / denom if np.isfinite(denom) and denom > 0 else 0.5 * step
            step = min(max(trial, 0.1 * step), 0.5 * step)
        else:
            break  # no decrease found: x is as good as this line search gets
        s, y = x_new - x, g_new - g
        sy = dot(s, y)
        if sy > 1e-12 * _norm(s) * _norm(y):
            pairs.append((s, y, 1.0 / sy))
        x, f, g = x_new, f_new, g_new
    return x


def _direction(g: np.ndarray, pairs, gnorm: float) -> np.ndarray:
    """Two-loop recursion: ``−H g`` for the L-BFGS inverse-Hessian estimate ``H``; without
    curvature pairs, the steepest-descent step of unit length."""
    if not pairs:
        return -g / gnorm
    q = g.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * dot(s, q)
        axpy(-a, y, q)
        alphas.append(a)
    s, y, _ = pairs[-1]
    q *= dot(s, y) / dot(y, y)  # initial Hessian scaling γ = sᵀy / yᵀy
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * dot(y, q)
        axpy(a - b, s, q)
    return -q
