"""Phase-gradient heap integration (PGHI; Průša, Balazs & Søndergaard 2017), optionally refined.

For a Gaussian window ``exp(−π t² / λ)`` the STFT phase derivatives follow from the
log-magnitude ``s = log|X|`` (Průša et al. 2017, eq. 14–15; seed 002 §2 uses the same relations)::

    ∂φ/∂t = (1/λ) ∂s/∂ω + 2π ω        (instantaneous frequency, rad per sample)
    ∂φ/∂ω = −λ ∂s/∂t                  (local group delay)

with the phase referred to the window centre. A Hann window of ``L`` samples is approximated by
``λ = 0.25645 · L²``. In frames (hop ``a``) and bins (``M = n_fft``) the steps are
``Δφ_time = a ((M/λ) ∂s/∂m + 2π m / M)`` and ``Δφ_freq = −(λ / (a M)) ∂s/∂n``. The phase is then
integrated with the trapezoid rule from the largest coefficient outwards, always continuing from
the largest coefficient already reached (a max-heap, Algorithm 1 of the paper). Coefficients below
``tol`` times the maximum get a random phase. The heap loop is a Numba kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from melforge.core.inverter import Inverter
from melforge.core.stft import StftParams
from melforge.core.validation import check_magnitude

#: λ / L² of the Gaussian that best matches a Hann window of L samples (Průša et al. 2017).
GAMMA_HANN = 0.25645
REFINES = (None, "griffin_lim", "gradient")


def phase_steps(logmag: np.ndarray, stft: StftParams, gamma: float = GAMMA_HANN) -> tuple[np.ndarray, np.ndarray]:
    """Phase increments from the log-magnitude ``logmag (frames, bins)`` (natural log).

    Returns:
        ``(time_step, freq_step)``, both ``(frames, bins)`` in radians: the phase advance from one
        frame to the next (``a · ∂φ/∂t``) and from one bin to the next (``∂φ/∂ω / M``), in the
        window-centred phase convention.
    """
    lam = gamma * stft.win_length**2  # samples²
    n_fft, hop = stft.n_fft, stft.hop_length
    ds_dm = np.gradient(logmag, axis=1) if logmag.shape[1] > 1 else np.zeros_like(logmag)
    ds_dn = np.gradient(logmag, axis=0) if logmag.shape[0] > 1 else np.zeros_like(logmag)
    m = np.arange(logmag.shape[1])[None, :]
    time_step = hop * ((n_fft / lam) * ds_dm + 2 * np.pi * m / n_fft)
    freq_step = -(lam / (hop * n_fft)) * ds_dn
    return time_step, freq_step


@njit(cache=True)
def _heap_push(keys, items, size, key, item):
    i = size
    keys[i] = key
    items[i] = item
    while i > 0:
        parent = (i - 1) // 2
        if keys[parent] >= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        items[parent], items[i] = items[i], items[parent]
        i = parent
    return size + 1


@njit(cache=True)
def _heap_pop(keys, items, size):
    top = items[0]
    size -= 1
    keys[0] = keys[size]
    items[0] = items[size]
    i = 0
    while True:
        left = 2 * i + 1
        right = left + 1
        largest = i
        if left < size and keys[left] > keys[largest]:
            largest = left
        if right < size and keys[right] > keys[largest]:
            largest = right
        if largest == i:
            break
        keys[largest], keys[i] = keys[i], keys[largest]
        items[largest], items[i] = items[i], items[largest]
        i = largest
    return top, size


@njit(cache=True)
def heap_integrate(logmag, time_step, freq_step, threshold, random_phase, order):
    """Heap-ordered trapezoidal phase integration (Průša et al. 2017, Algorithm 1).

    Args:
        logmag: ``(frames, bins)`` log-magnitude (the heap priority).
        time_step, freq_step: ``(frames, bins)`` phase increments (radians) per frame / per bin.
        threshold: coefficients with ``logmag < threshold`` take ``random_phase``.
        random_phase: ``(frames, bins)`` phases for those coefficients.
        order: flat indices of all coefficients by decreasing ``logmag`` (seeds for new regions).

    Returns:
        ``(frames, bins)`` phase in radians.
    """
    n_frames, n_bins = logmag.shape
    phase = np.zeros((n_frames, n_bins))
    done = np.zeros((n_frames, n_bins), dtype=np.bool_)
    todo = 0
    for t in range(n_frames):
        for f in range(n_bins):
            if logmag[t, f] < threshold:
                phase[t, f] = random_phase[t, f]
                done[t, f] = True
            else:
                todo += 1
    keys = np.empty(n_frames * n_bins)
    items = np.empty(n_frames * n_bins, dtype=np.int64)
    size = 0
    ptr = 0
    while todo > 0:
        while done[order[ptr] // n_bins, order[ptr] % n_bins]:
            ptr += 1
        start = order[ptr]
        t0, f0 = start // n_bins, start % n_bins
        phase[t0, f0] = 0.0
        done[t0, f0] = True
        todo -= 1
        size = _heap_push(keys, items, size, logmag[t0, f0], start)
        while size > 0:
            item, size = _heap_pop(keys, items, size)
            t, f = item // n_bins, item % n_bins
            # next / previous frame (time direction)
            if t + 1 < n_frames and not done[t + 1, f]:
                phase[t + 1, f] = phase[t, f] + 0.5 * (time_step[t, f] + time_step[t + 1, f])
                done[t + 1, f] = True
                todo -= 1
                size = _heap_push(keys, items, size, logmag[t + 1, f], item + n_bins)
            if t > 0 and not done[t - 1, f]:
                phase[t - 1, f] = phase[t, f] - 0.5 * (time_step[t, f] + time_step[t - 1, f])
                done[t - 1, f] = True
                todo -= 1
                size = _heap_push(keys, items, size, logmag[t - 1, f], item - n_bins)
            # next / previous bin (frequency direction)
            if f + 1 < n_bins and not done[t, f + 1]:
                phase[t, f + 1] = phase[t, f] + 0.5 * (freq_step[t, f] + freq_step[t, f + 1])
                done[t, f + 1] = True
                todo -= 1
                size = _heap_push(keys, items, size, logmag[t, f + 1], item + 1)
            if f > 0 and not done[t, f - 1]:
                phase[t, f - 1] = phase[t, f] - 0.5 * (freq_step[t, f] + freq_step[t, f - 1])
                done[t, f - 1] = True
                todo -= 1
                size = _heap_push(keys, items, size, logmag[t, f - 1], item - 1)
    return phase


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
        ``(frames, bins)`` phase in radians.

    Raises:
        ValueError: a bad magnitude (see :func:`melforge.core.validation.check_magnitude`).
    """
    magnitude = check_magnitude(magnitude, stft)
    peak = float(magnitude.max())
    rng = np.random.default_rng(seed)
    random_phase = 2 * np.pi * rng.random(magnitude.shape)
    if peak == 0.0:
        return random_phase
    floor = peak * tol * 1e-3  # keeps the log finite; everything this small is random-phased
    logmag = np.log(np.maximum(magnitude, floor))
    time_step, freq_step = phase_steps(logmag, stft, gamma)
    order = np.argsort(-logmag, axis=None, kind="stable").astype(np.int64)
    phase = heap_integrate(logmag, time_step, freq_step, np.log(peak * tol), random_phase, order)
    # window-centred → frame-start reference: a shift by n_fft/2 samples is (−1)^m per bin m
    phase += np.pi * (np.arange(magnitude.shape[1]) % 2)[None, :]
    return phase


class PGHI(Inverter):
    """Phase-gradient heap integration (Průša et al. 2017), optionally refined.

    Args:
        tol: relative magnitude (to the maximum) below which phases are random.
        refine: ``None`` (PGHI alone), ``"griffin_lim"`` (fast GL warm-started from the PGHI
            phase) or ``"gradient"`` (L-BFGS on the waveform started from the PGHI signal).
        refine_iters: iterations of the refinement.
        momentum: fast-GL momentum α for ``refine="griffin_lim"``.
        gamma: ``λ / win_length²`` of the Gaussian that approximates the Hann window.
        seed: seed of the random phases.

    Raises:
        ValueError: ``tol`` not in (0, 1), an unknown ``refine``, negative ``refine_iters`` or a
            non-positive ``gamma``.
    """

    def __init__(
        self,
        tol: float = 1e-5,
        refine: str | None = None,
        refine_iters: int = 32,
        momentum: float = 0.99,
        gamma: float = GAMMA_HANN,
        seed: int = 0,
    ):
        if not 0 < tol < 1:
            raise ValueError(f"pghi: tol must be in (0, 1), got {tol!r}")
        if refine in ("null", "none", "None"):
            refine = None
        if refine not in REFINES:
            raise ValueError(f"pghi: refine must be one of {REFINES}, got {refine!r}")
        if int(refine_iters) != refine_iters or refine_iters < 0:
            raise ValueError(f"pghi: refine_iters must be an integer >= 0, got {refine_iters!r}")
        if not gamma > 0:
            raise ValueError(f"pghi: gamma must be > 0, got {gamma!r}")
        self.tol, self.refine, self.refine_iters = float(tol), refine, int(refine_iters)
        self.momentum, self.gamma, self.seed = float(momentum), float(gamma), int(seed)

    def invert(self, magnitude: np.ndarray, stft: StftParams, *, length: int | None = None) -> np.ndarray:
        """Invert ``magnitude (frames, n_fft//2+1)`` → ``(samples,)`` float32 at ``stft.sr`` Hz.

        Raises:
            ValueError: a bad magnitude (see :func:`melforge.core.validation.check_magnitude`).
        """
        from .gradient import GradientInversion
        from .griffin_lim import GriffinLim

        magnitude = check_magnitude(magnitude, stft)
        phase = pghi_phase(magnitude, stft, tol=self.tol, gamma=self.gamma, seed=self.seed)
        if self.refine == "gradient":
            grad = GradientInversion(n_iter=self.refine_iters, seed=self.seed)
            return grad.invert(magnitude, stft, length=length, initial_phase=phase)
        n_iter = self.refine_iters if self.refine == "griffin_lim" else 0
        gl = GriffinLim(n_iter=n_iter, momentum=self.momentum, seed=self.seed)
        return gl.invert(magnitude, stft, length=length, initial_phase=phase)
