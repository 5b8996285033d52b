"""Mel-target magnitude update inside Griffin-Lim (the NNLS mel → linear magnitude it starts
from is :func:`melforge.core.mel_inversion.nnls_magnitude`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse


class MelMagnitudeUpdate:
    """Re-estimates a linear magnitude from the current spectrogram so that its mel power
    matches a target: one multiplicative (Richardson–Lucy / KL-NMF) step
    ``P ← P ⊙ Bᵀ(M / (B P)) / Bᵀ1`` from ``P = |X|²``, returned as ``sqrt(P)``.

    Inside Griffin-Lim this keeps the fine structure that consistency restores (harmonics the
    mel filterbank smears) while holding the mel envelope to the target, instead of fitting a
    fixed NNLS magnitude as ``librosa.feature.inverse.mel_to_audio`` does.

    Args:
        mel_power: ``(frames, n_mels)`` float64 target mel power ``M``, as
            :func:`melforge.core.mel_inversion.check_mel` returns it (not checked again: the
            inverter's entry point has validated it).
        mel_basis: ``(n_mels, bins)`` float64 filterbank ``B``, likewise.
    """

    def __init__(self, mel_power: np.ndarray, mel_basis: np.ndarray):
        self.target = np.ascontiguousarray(mel_power.T)  # (n_mels, frames)
        self.b = scipy.sparse.csr_matrix(mel_basis)
        self.bt = scipy.sparse.csr_matrix(mel_basis.T)
        weight = self.bt @ np.ones(mel_basis.shape[0])  # (bins,) Bᵀ1
        # bins no filter covers get no energy (as NNLS gives them)
        self.inv_weight = np.where(weight > 0, 1.0 / np.maximum(weight, 1e-30), 0.0)[:, None]
        self.eps = 1e-12 * max(float(mel_power.max()), 1e-30)

    def __call__(self, spec: np.ndarray) -> np.ndarray:
        """``spec (frames, bins)`` complex → ``(frames, bins)`` float32 magnitude."""
        power = (spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2).T  # (bins, frames)
        ratio = self.target / np.maximum(self.b @ power, self.eps)  # (n_mels, frames)
        power *= (self.bt @ ratio) * self.inv_weight
        return np.ascontiguousarray(np.sqrt(power).T, dtype=np.float32)
