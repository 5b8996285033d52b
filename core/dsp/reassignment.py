"""Auger–Flandrin reassignment operators: instantaneous frequency and group delay per STFT bin.

Seed 002 §3.1 computes the phase gradient "using the Auger–Flandrin technique" (Auger & Flandrin
1995): besides the STFT ``X_h`` with the Hann window ``h``, two STFTs with the window's time
derivative ``Dh[i] = dh/di`` and with the time-weighted window ``Th[i] = i · h[i]`` (``i`` in
samples from the frame centre) give the phase derivatives of every bin in closed form, with no
finite differences (Fulop & Fitz 2006, eq. 11 and 13)::

    φ'_i[m, n] = ω_m − Im(X_Dh / X_h)           instantaneous frequency, rad per sample
    ∂φ/∂ω[m, n] = −Re(X_Th / X_h)               group delay, samples (∂φ/∂m = (2π/N) ∂φ/∂ω)

Here ``φ = arg X`` with ``X`` the STFT of seed 002 eq. 1 (window centred on the frame, phase
referred to the frame centre) and ``ω_m = 2π m / N`` (``N = n_fft``). Seed 002 eq. 6 turns them
into bin offsets, which is what this module returns::

    Δm = φ'_i N / (2π) − m = −Im(X_Dh / X_h) · N / (2π)        frequency offset, bins
    Δn = −φ'_m N / (2π R) = Re(X_Th / X_h) / R                  time offset, frames (hop R)

so the reassigned point of bin ``(m, n)`` is ``(m + Δm, n + Δn)`` (eq. 5): a stationary sinusoid
of frequency ``f`` Hz gives ``m + Δm = f N / sr`` in every bin of its main lobe, an impulse at
sample ``t`` gives ``n + Δn = t / R`` in every frame whose window covers it.

Eq. 2 of the paper writes ``X = M e^{-jφ}``; with that sign eq. 6 would give negative
frequencies for positive-frequency sinusoids, so (as eq. 3–6 and Fig. 2 require) ``φ = arg X``
here. The ratios ``X_Dh / X_h`` and ``X_Th / X_h`` do not depend on where the phase of a frame is
referred to, so librosa's frame-start convention gives the same offsets.

The derivative window is the analytic derivative of the periodic Hann window (librosa's
``reassigned_spectrogram`` uses a centred finite difference of the sampled window, and centres
its time weights half a sample earlier for even ``n_fft``; the tests state the resulting
tolerance).

Shapes are time-major: ``(frames, bins)`` with ``bins = n_fft // 2 + 1``, frames centred as in
:class:`melforge.core.stft.StftParams` (``frames = 1 + samples // hop_length``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft

from melforge.core.stft import StftParams
from melforge.core.validation import check_audio

from . import stft_kernels as K

#: Bins whose power is this far (dB) below the clip's loudest bin get zero offsets: their
#: reassignment ratios are 0/0 (exact silence) or rounding noise.
FLOOR_DB = -120.0


@dataclass(frozen=True)
class Reassignment:
    """Reassignment of every STFT bin (seed 002 eq. 5–6), unclipped.

    Attributes:
        spectrum: ``(frames, bins)`` complex128 STFT with the Hann window, librosa's convention
            (equal to ``librosa.stft(audio, center=True, pad_mode="constant").T``).
        dm: ``(frames, bins)`` frequency offset Δm in bins (eq. 6, ``φ'_i N/(2π) − m``); 0 where
            the bin's power is below the floor.
        dn: ``(frames, bins)`` time offset Δn in frames (eq. 6, ``−φ'_m N/(2π R)``); 0 where the
            bin's power is below the floor.
    """

    spectrum: np.ndarray
    dm: np.ndarray
    dn: np.ndarray

    def instantaneous_frequency(self, stft: StftParams) -> np.ndarray:
        """``φ'_i`` of eq. 3 and 6: ``(frames, bins)`` rad per sample, ``2π (m + Δm) / N``."""
        m = np.arange(self.dm.shape[1])[None, :]
        return 2 * np.pi * (m + self.dm) / stft.n_fft

    def group_delay(self, stft: StftParams) -> np.ndarray:
        """``φ'_m`` of eq. 4 and 6: ``(frames, bins)`` rad per bin, ``−2π R Δn / N``."""
        return -2 * np.pi * stft.hop_length * self.dn / stft.n_fft


def reassignment_windows(stft: StftParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three analysis windows, each ``(n_fft,)`` float64, zero-padded (centred) like the STFT.

    Returns:
        ``(h, Dh, Th)``: the periodic Hann window ``h[k] = ½ − ½ cos(2π (k − o) / L)`` on
        ``o ≤ k < o + L`` (``L = win_length``, ``o = (n_fft − L) // 2``), its analytic derivative
        ``Dh[k] = (π / L) sin(2π (k − o) / L)`` per sample, and the time-weighted window
        ``Th[k] = (k − n_fft // 2) h[k]`` (samples from the frame centre, which is signal sample
        ``n · hop_length`` for frame ``n``).
    """
    return _windows(stft)


@functools.lru_cache(maxsize=16)
def _windows(stft: StftParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_fft, length = stft.n_fft, stft.win_length
    left = (n_fft - length) // 2
    k = np.arange(length)
    h = np.zeros(n_fft)
    dh = np.zeros(n_fft)
    h[left : left + length] = 0.5 - 0.5 * np.cos(2 * np.pi * k / length)
    dh[left : left + length] = (np.pi / length) * np.sin(2 * np.pi * k / length)
    th = (np.arange(n_fft) - n_fft // 2) * h
    for w in (h, dh, th):
        w.flags.writeable = False
    return h, dh, th


def reassignment_spectra(audio: np.ndarray, stft: StftParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """STFTs of ``audio (samples,)`` with the windows of :func:`reassignment_windows`.

    Returns:
        ``(X_h, X_Dh, X_Th)``, each ``(frames, bins)`` complex128, librosa's framing
        (``center=True``, zero padding) and phase reference (frame start).

    Raises:
        ValueError: audio that is not 1-D, empty or not finite.
    """
    audio = check_audio(audio).astype(np.float64, copy=False)
    pad = stft.n_fft // 2
    padded = np.zeros(audio.shape[0] + 2 * pad)
    padded[pad : pad + audio.shape[0]] = audio
    n_frames = stft.frames_for(audio.shape[0])
    frames = np.empty((n_frames, stft.n_fft))  # (frames, n_fft), reused for each window
    out = []
    for window in reassignment_windows(stft):
        K.frame_windowed(padded, window, stft.hop_length, n_frames, frames)
        out.append(scipy.fft.rfft(frames, axis=1, workers=K.FFT_WORKERS))  # (frames, bins)
    return out[0], out[1], out[2]


def reassign(audio: np.ndarray, stft: StftParams, *, floor_db: float = FLOOR_DB) -> Reassignment:
    """Reassignment operators of ``audio (samples,)`` at ``stft.sr`` Hz (module docstring).

    Args:
        audio: ``(samples,)`` real waveform.
        stft: analysis geometry (Hann window of ``win_length`` samples in ``n_fft``).
        floor_db: bins with power below ``floor_db`` dB of the loudest bin get ``Δm = Δn = 0``.

    Returns:
        :class:`Reassignment` with the STFT and the unclipped offsets Δm (bins), Δn (frames).

    Raises:
        ValueError: audio that is not 1-D, empty or not finite.
    """
    x_h, x_dh, x_th = reassignment_spectra(audio, stft)
    power = x_h.real**2 + x_h.imag**2  # (frames, bins)
    peak = float(power.max())
    live = power > max(peak * 10 ** (floor_db / 10), np.finfo(np.float64).tiny)
    safe = np.where(live, x_h, 1.0)
    dm = np.where(live, -np.imag(x_dh / safe) * stft.n_fft / (2 * np.pi), 0.0)
    dn = np.where(live, np.real(x_th / safe) / stft.hop_length, 0.0)
    return Reassignment(spectrum=x_h, dm=dm, dn=dn)
