"""Targets of seed 002's phase-gradient vocoder: magnitude, bin offsets and the classification λ.

From the Auger–Flandrin reassignment of the audio (:mod:`melforge.core.dsp.reassignment`):

* ``magnitude``: the linear STFT magnitude ``M`` (eq. 2);
* ``dm``, ``dn``: the bin offsets Δm, Δn of eq. 6, in the paper's definitions and signs
  (``Δm = φ'_i N/(2π) − m`` in bins, ``Δn = −φ'_m N/(2π R)`` in frames, ``φ = arg X``), clipped
  as §3.1 says: ``|Δm| ≤ 4`` bins and ``|Δn| ≤ N / (2R)`` frames (``N`` the window length
  ``win_length``, ``R`` the hop);
* ``lam``: the classification λ of eq. 12,
  ``λ = exp(−((d/dm) ṁ / (d/dn) ṅ)²)`` with ``ṁ = m + Δm``, ``ṅ = n + Δn`` (eq. 5) and centred
  finite differences (one-sided at the edges, as ``np.gradient``), computed from the clipped
  offsets so that the same function of a network's (clipped-range) estimates gives ``λ̂`` of
  eq. 10. λ ≈ 1 on sinusoidal bins (ṁ constant along frequency), ≈ 0 on impulsive bins (ṅ
  constant along time).

All arrays are time-major ``(frames, bins)``, frames centred as in
:class:`melforge.core.stft.StftParams`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from melforge.core.stft import StftParams

from .reassignment import FLOOR_DB, reassign

#: §3.1: "the absolute bin offsets are clipped to 4.0 on the frequency dimension".
MAX_FREQ_OFFSET = 4.0


def max_time_offset(stft: StftParams) -> float:
    """§3.1's clip of the time offset, ``N / (2R)`` frames: half the window in hops."""
    return stft.win_length / (2 * stft.hop_length)


@dataclass(frozen=True)
class PhaseTargets:
    """Seed 002's per-bin targets of one clip.

    Attributes:
        magnitude: ``(frames, bins)`` linear STFT magnitude ``M`` (Hann window, librosa's
            framing; ``|librosa.stft(audio)|.T``).
        dm: ``(frames, bins)`` frequency offset Δm in bins (eq. 6), clipped to ``[−4, 4]``.
        dn: ``(frames, bins)`` time offset Δn in frames (eq. 6), clipped to ``±N/(2R)``.
        lam: ``(frames, bins)`` classification λ ∈ [0, 1] (eq. 12) of the clipped offsets.
    """

    magnitude: np.ndarray
    dm: np.ndarray
    dn: np.ndarray
    lam: np.ndarray


def clip_offsets(dm: np.ndarray, dn: np.ndarray, stft: StftParams) -> tuple[np.ndarray, np.ndarray]:
    """Clip ``dm`` (bins) to ``±4`` and ``dn`` (frames) to ``±N/(2R)`` (§3.1); same shapes."""
    limit = max_time_offset(stft)
    return np.clip(dm, -MAX_FREQ_OFFSET, MAX_FREQ_OFFSET), np.clip(dn, -limit, limit)


def classification(dm: np.ndarray, dn: np.ndarray) -> np.ndarray:
    """λ of eq. 12 from bin offsets ``dm, dn (frames, bins)`` (bins, frames).

    ``d ṁ/dm = 1 + ∂Δm/∂m`` and ``d ṅ/dn = 1 + ∂Δn/∂n`` by centred finite differences
    (one-sided at the first and last bin / frame, as ``np.gradient``). Where ``d ṅ/dn = 0`` the
    ratio is taken as infinite (λ = 0) unless ``d ṁ/dm = 0`` too (then λ = 1).

    Returns:
        ``(frames, bins)`` float64 λ ∈ [0, 1].

    Raises:
        ValueError: shapes that differ or are not 2-D with at least two frames and two bins.
    """
    dm = np.asarray(dm, dtype=np.float64)
    dn = np.asarray(dn, dtype=np.float64)
    if dm.shape != dn.shape or dm.ndim != 2 or min(dm.shape) < 2:
        raise ValueError(f"classification: expected two equal (frames >= 2, bins >= 2) arrays, got {dm.shape} and {dn.shape}")
    d_freq = 1.0 + np.gradient(dm, axis=1)  # d(m + Δm)/dm, (frames, bins)
    d_time = 1.0 + np.gradient(dn, axis=0)  # d(n + Δn)/dn, (frames, bins)
    num, den = d_freq**2, d_time**2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))
    return np.exp(-ratio)


def phase_targets(audio: np.ndarray, stft: StftParams, *, floor_db: float = FLOOR_DB) -> PhaseTargets:
    """Seed 002's targets (§2.2, §3.1, eq. 6 and 12) of ``audio (samples,)`` at ``stft.sr`` Hz.

    Args:
        audio: ``(samples,)`` real waveform.
        stft: analysis geometry (Hann window); the paper's is 44.1 kHz, n_fft 2048, hop 256.
        floor_db: bins this far below the loudest bin have Δm = Δn = 0 (see
            :func:`melforge.core.dsp.reassignment.reassign`).

    Returns:
        :class:`PhaseTargets` (float64 arrays, ``frames = 1 + samples // hop_length``).

    Raises:
        ValueError: audio that is not 1-D, empty or not finite, or shorter than two frames.
    """
    r = reassign(audio, stft, floor_db=floor_db)
    dm, dn = clip_offsets(r.dm, r.dn, stft)
    return PhaseTargets(magnitude=np.abs(r.spectrum), dm=dm, dn=dn, lam=classification(dm, dn))
