"""Phase-gradient heap integration (PGHI; Průša, Balazs & Søndergaard 2017).

For a Gaussian window ``exp(−π t² / λ)`` the STFT phase derivatives follow from the
log-magnitude ``s = log|X|`` (Průša et al. 2017, eq. 14–15; seed 002 §2 uses the same relations)::

    ∂φ/∂t = (1/λ) ∂s/∂ω + 2π ω        (instantaneous frequency, rad per sample)
    ∂φ/∂ω = −λ ∂s/∂t                  (local group delay)

with the phase referred to the window centre. A Hann window of ``L`` samples is approximated by
``λ = 0.25645 · L²``. In frames (hop ``a``) and bins (``M = n_fft``) the steps are
``Δφ_time = a ((M/λ) ∂s/∂m + 2π m / M)`` and ``Δφ_freq = −(λ / (a M)) ∂s/∂n``. The phase is then
integrated with the trapezoid rule from the largest coefficient outwards, always continuing from
the largest coefficient already reached (Algorithm 1 of the paper; its max-heap is a bucket
queue with 0.01-nat buckets here). Coefficients below
``tol`` times the maximum get a random phase. The heap loop is a Numba kernel,
:func:`heap_integrate_directed`, which seed 002's integrators share
(:mod:`melforge.inverters.phase_integration`: per-bin directions, eq. 3/4 steps, random restarts).

PGHI is not iterative; refiners start from it by composition: ``GriffinLim(initializer=PGHI())``
(fast GL from the PGHI phase), ``GradientInversion(PGHI())`` (L-BFGS from the PGHI signal).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from melforge.core.inverter import Inverter, signal_length
from melforge.core.stft import StftParams
from melforge.core.validation import check_magnitude

from . import stft_kernels as K

#: λ / L² of the Gaussian that best matches a Hann window of L samples (Průša et al. 2017).
GAMMA_HANN = 0.25645


def phase_steps(logmag: np.ndarray, stft: StftParams, gamma: float = GAMMA_HANN) -> tuple[np.ndarray, np.ndarray]:
    """Phase increments from the log-magnitude ``logmag (frames, bins)`` (natural log).

    Derivatives are central differences (one-sided at the edges, as ``np.gradient``).

    Returns:
        ``(time_step, freq_step)``, both ``(frames, bins)`` in radians: the phase advance from one
        frame to the next (``a · ∂φ/∂t``) and from one bin to the next (``∂φ/∂ω / M``), in the
        window-centred phase convention.
    """
    lam = gamma * stft.win_length**2  # samples²
    n_fft, hop = stft.n_fft, stft.hop_length
    logmag = np.ascontiguousarray(logmag, dtype=np.float64)
    time_step = np.empty_like(logmag)
    freq_step = np.empty_like(logmag)
    _phase_steps(logmag, hop * n_fft / lam, 2 * np.pi * hop / n_fft, -lam / (hop * n_fft), time_step, freq_step)
    return time_step, freq_step


@njit(cache=True)
def _phase_steps(logmag, time_scale, bin_advance, freq_scale, time_step, freq_step):
    """``time_step = time_scale · ∂s/∂m + bin_advance · m``, ``freq_step = freq_scale · ∂s/∂n``."""
    n_frames, n_bins = logmag.shape
    for t in range(n_frames):
        for f in range(n_bins):
            if n_bins == 1:
                ds_dm = 0.0
            elif f == 0:
                ds_dm = logmag[t, 1] - logmag[t, 0]
            elif f == n_bins - 1:
                ds_dm = logmag[t, f] - logmag[t, f - 1]
            else:
                ds_dm = 0.5 * (logmag[t, f + 1] - logmag[t, f - 1])
            if n_frames == 1:
                ds_dn = 0.0
            elif t == 0:
                ds_dn = logmag[1, f] - logmag[0, f]
            elif t == n_frames - 1:
                ds_dn = logmag[t, f] - logmag[t - 1, f]
            else:
                ds_dn = 0.5 * (logmag[t + 1, f] - logmag[t - 1, f])
            time_step[t, f] = time_scale * ds_dm + bin_advance * f
            freq_step[t, f] = freq_scale * ds_dn


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
    sinusoidal bins, along frequency on impulsive ones). A coefficient that no reached neighbour
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


def pghi_phase(
    magnitude: np.ndarray, stft: StftParams, *, tol: float = 1e-5, gamma: float = GAMMA_HANN, seed: int = 0
) -> np.ndarray:
    """PGHI phase estimate for ``magnitude (frames, bins)``, in librosa's convention (phase
    referred to the frame start, so ``magnitude · exp(i φ)`` feeds ``librosa.istft``).

    Args:
        magnitude: non-negative linear STFT magnitude.
        stft: analysis geometry (Hann window of ``win_length`` samples).
        tol: relative magnitude below which coefficients get a random phase.
        gamma: ``λ / win_length²`` of the Gaussian approximating the window.
        seed: seed of the random phases.

    Returns:
        ``(frames, bins)`` float64 phase in radians.

    Raises:
        ValueError: a bad magnitude (see :func:`melforge.core.validation.check_magnitude`).
    """
    return _pghi_phase(check_magnitude(magnitude, stft), stft, tol, gamma, seed)


def _pghi_phase(magnitude: np.ndarray, stft: StftParams, tol: float, gamma: float, seed: int) -> np.ndarray:
    """:func:`pghi_phase` of a validated ``(frames, bins)`` float64 magnitude."""
    peak = float(magnitude.max())
    rng = np.random.default_rng(seed)
    random_phase = 2 * np.pi * rng.random(magnitude.shape)
    if peak == 0.0:
        return random_phase
    floor = peak * tol * 1e-3  # keeps the log finite; everything this small is random-phased
    logmag = np.log(np.maximum(magnitude, floor))
    time_step, freq_step = phase_steps(logmag, stft, gamma)
    phase = heap_integrate(logmag, time_step, freq_step, np.log(peak * tol), random_phase)
    # window-centred → frame-start reference: a shift by n_fft/2 samples is (−1)^m per bin m
    phase += np.pi * (np.arange(magnitude.shape[1]) % 2)[None, :]
    return phase


class PGHI(Inverter):
    """Phase-gradient heap integration (Průša et al. 2017): ``ISTFT(S · exp(i φ_PGHI))``.

    A mel power goes through the NNLS magnitude (the base class's :meth:`Inverter.invert_mel`).
    As another inverter's ``initializer`` it supplies its phase (:meth:`_initial_phase`).

    Args:
        tol: relative magnitude (to the maximum) below which phases are random.
        gamma: ``λ / win_length²`` of the Gaussian that approximates the Hann window.
        seed: seed of the random phases.

    Raises:
        ValueError: ``tol`` not in (0, 1) or a non-positive ``gamma``.
    """

    def __init__(self, tol: float = 1e-5, gamma: float = GAMMA_HANN, seed: int = 0):
        if not 0 < tol < 1:
            raise ValueError(f"pghi: tol must be in (0, 1), got {tol!r}")
        if not gamma > 0:
            raise ValueError(f"pghi: gamma must be > 0, got {gamma!r}")
        self.tol, self.gamma, self.seed = float(tol), float(gamma), int(seed)

    def invert(self, magnitude: np.ndarray, stft: StftParams, *, length: int | None = None) -> np.ndarray:
        """Invert ``magnitude (frames, n_fft//2+1)`` → ``(samples,)`` float32 at ``stft.sr`` Hz.

        Args:
            magnitude: non-negative linear STFT magnitude.
            stft: the analysis geometry (Hann window).
            length: output length in samples (default ``(frames - 1) * hop_length``).

        Raises:
            ValueError: a bad magnitude (see :func:`melforge.core.validation.check_magnitude`)
                or a ``length`` that does not fit the frame count.
        """
        magnitude = check_magnitude(magnitude, stft)
        return self._invert(magnitude, stft, signal_length(stft, magnitude.shape[0], length))

    def _invert(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """``ISTFT(S · exp(i φ_PGHI))``: ``(length,)`` float32."""
        phase = self._initial_phase(magnitude, stft, length)
        c = K.polar(magnitude, phase, np.empty(magnitude.shape, dtype=np.complex64))  # (frames, bins)
        return K.istft(c, stft, length).astype(np.float32, copy=False)

    def _initial_phase(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """The PGHI phase, ``(frames, bins)`` float64 radians (:func:`pghi_phase`)."""
        return _pghi_phase(magnitude, stft, self.tol, self.gamma, self.seed)
