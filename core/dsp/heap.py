"""The heap integration of phase derivatives (Průša, Balazs & Søndergaard 2017, Algorithm 1):
Numba kernels shared by PGHI (:mod:`melforge.inverters.pghi`) and our interpretation of seed
002 §3.2's integrator (:mod:`melforge.core.dsp.phase_integration`). The phase is integrated with
the trapezoid rule from the largest coefficient outwards, always continuing from the largest
coefficient already reached; the max-heap is a bucket queue of :data:`QUANTUM`-nat buckets."""

from __future__ import annotations

import numpy as np
from numba import njit


#: Width of the priority buckets in nats of log-magnitude (0.01 nats = 0.087 dB).
QUANTUM = 0.01


@njit(cache=True)
def _push(head, nxt, bucket, i, cur):
    """Put coefficient ``i`` on top of its bucket's stack; returns the new top bucket."""
    b = bucket[i]
    nxt[i] = head[b]
    head[b] = i
    return b if b > cur else cur


@njit(cache=True)
def heap_integrate(logmag, time_step, freq_step, threshold, random_phase, quantum=QUANTUM):
    """Priority-ordered trapezoidal phase integration (Průša et al. 2017, Algorithm 1).

    Starting from the largest coefficient, the phase spreads to the four neighbours of the
    largest coefficient reached so far; when no reached coefficient is left (a region bounded by
    coefficients under the threshold is done), it restarts with phase 0 from the largest
    coefficient not yet reached. The max-heap of the paper is a bucket queue here: priorities are
    ``floor((logmag − threshold) / quantum)``, last in first out within a bucket, so push and pop
    are O(1) and the order is exact to ``quantum`` nats (2.5× faster than a binary heap on
    piano notes at the same SC). This is :func:`heap_integrate_directed` with every coefficient
    open to both directions, trapezoidal steps and phase-0 restarts.

    Args:
        logmag: ``(frames, bins)`` log-magnitude (natural log; the priority).
        time_step, freq_step: ``(frames, bins)`` phase increments (radians) per frame / per bin.
        threshold: coefficients with ``logmag < threshold`` take ``random_phase``.
        random_phase: ``(frames, bins)`` phases for those coefficients.
        quantum: bucket width in nats (> 0).

    Returns:
        ``(frames, bins)`` phase in radians (at most 2³¹ − 1 coefficients: 32-bit links).
    """
    open_ = np.ones(logmag.shape, dtype=np.bool_)
    return heap_integrate_directed(
        logmag, time_step, freq_step, threshold, random_phase, quantum, open_, open_, True, False
    )


@njit(cache=True)
def heap_integrate_directed(
    logmag, time_step, freq_step, threshold, random_phase, quantum, time_ok, freq_ok, trapezoid, random_restart
):
    """The heap integration of :func:`heap_integrate` with per-coefficient directions and rules.

    Coefficients are reached in the same priority order, but the phase passes between time
    neighbours ``i`` and ``j`` only where ``time_ok[i] or time_ok[j]``, and between frequency
    neighbours only where ``freq_ok[i] or freq_ok[j]`` (seed 002 §3.2 propagates along time on
    sinusoidal bins, along frequency on impulsive ones; "either" is our reading). A coefficient that no reached neighbour
    may feed waits until it is the largest one not reached, and then starts a new region
    (restart).

    Args:
        logmag, time_step, freq_step, threshold, random_phase, quantum: as :func:`heap_integrate`.
        time_ok, freq_ok: ``(frames, bins)`` bool, the directions open at each coefficient.
        trapezoid: True: the step between neighbours ``a`` and ``a + 1`` is the mean of their
            increments (PGHI); False: the increment at the lower index ``a``, as seed 002
            eq. 3 (``φ[m, n+1] = φ[m, n] + R φ'_i[m, n]``) and eq. 4 (``φ[m+1, n] = φ[m, n] +
            φ'_m[m, n]``) write it.
        random_restart: True: a restart takes ``random_phase`` at its seed; False: phase 0.

    Returns:
        ``(frames, bins)`` phase in radians.
    """
    n_frames, n_bins = logmag.shape
    n = n_frames * n_bins
    flat = logmag.ravel()
    ts = time_step.ravel()
    fs = freq_step.ravel()
    rand = random_phase.ravel()
    t_ok = time_ok.ravel()
    f_ok = freq_ok.ravel()
    top = threshold
    for i in range(n):
        if flat[i] > top:
            top = flat[i]
    n_buckets = int((top - threshold) / quantum) + 1
    phase = np.zeros(n)
    done = np.zeros(n, dtype=np.bool_)
    bucket = np.zeros(n, dtype=np.int32)  # 32-bit links: half the memory traffic of int64
    head = np.full(n_buckets, -1, dtype=np.int32)  # reached, not yet expanded
    nxt = np.empty(n, dtype=np.int32)
    seed_head = np.full(n_buckets, -1, dtype=np.int32)  # every coefficient, for restarts
    seed_nxt = np.empty(n, dtype=np.int32)
    todo = 0
    for i in range(n - 1, -1, -1):  # seeds: smallest index first within a bucket
        if flat[i] < threshold:
            phase[i] = rand[i]
            done[i] = True
        else:
            todo += 1
            b = min(int((flat[i] - threshold) / quantum), n_buckets - 1)
            bucket[i] = b
            seed_nxt[i] = seed_head[b]
            seed_head[b] = i
    seed_bucket = n_buckets - 1
    while todo > 0:
        while True:  # the largest coefficient not reached yet
            while seed_head[seed_bucket] == -1:
                seed_bucket -= 1
            s = seed_head[seed_bucket]
            seed_head[seed_bucket] = seed_nxt[s]
            if not done[s]:
                break
        phase[s] = rand[s] if random_restart else 0.0
        done[s] = True
        todo -= 1
        cur = _push(head, nxt, bucket, s, -1)
        while cur >= 0:
            i = head[cur]
            if i == -1:
                cur -= 1
                continue
            head[cur] = nxt[i]
            t = i // n_bins
            f = i - t * n_bins
            j = i + n_bins  # next frame
            if t + 1 < n_frames and not done[j] and (t_ok[i] or t_ok[j]):
                phase[j] = phase[i] + (0.5 * (ts[i] + ts[j]) if trapezoid else ts[i])
                done[j] = True
                todo -= 1
                cur = _push(head, nxt, bucket, j, cur)
            j = i - n_bins  # previous frame
            if t > 0 and not done[j] and (t_ok[i] or t_ok[j]):
                phase[j] = phase[i] - (0.5 * (ts[i] + ts[j]) if trapezoid else ts[j])
                done[j] = True
                todo -= 1
                cur = _push(head, nxt, bucket, j, cur)
            j = i + 1  # next bin
            if f + 1 < n_bins and not done[j] and (f_ok[i] or f_ok[j]):
                phase[j] = phase[i] + (0.5 * (fs[i] + fs[j]) if trapezoid else fs[i])
                done[j] = True
                todo -= 1
                cur = _push(head, nxt, bucket, j, cur)
            j = i - 1  # previous bin
            if f > 0 and not done[j] and (f_ok[i] or f_ok[j]):
                phase[j] = phase[i] - (0.5 * (fs[i] + fs[j]) if trapezoid else fs[j])
                done[j] = True
                todo -= 1
                cur = _push(head, nxt, bucket, j, cur)
    return phase.reshape((n_frames, n_bins))
