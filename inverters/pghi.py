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
:func:`melforge.core.dsp.heap.heap_integrate_directed`, which our
interpretation of seed 002 §3.2's integrator shares (:mod:`melforge.core.dsp.phase_integration`:
per-bin directions, eq. 3/4 steps, random restarts).

PGHI is not iterative; refiners start from it by composition: ``GriffinLim(initializer=PGHI())``
(fast GL from the PGHI phase), ``GradientInversion(PGHI())`` (L-BFGS from the PGHI signal).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from melforge.core.inverter import Inverter, signal_length
from melforge.core.stft import StftParams
from melforge.core.validation import check_magnitude

from melforge.core.dsp import stft_kernels as K
from melforge.core.dsp.heap import heap_integrate

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
