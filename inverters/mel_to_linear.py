"""Mel power → linear STFT magnitude, shared by every inverter.

Solves the non-negative least-squares problem of ``librosa.feature.inverse.mel_to_stft``,
``min_{P ≥ 0} ‖P Bᵀ − M‖²_F`` (``P`` linear power, ``B`` the mel filterbank), by accelerated
projected gradient (FISTA, Beck & Teboulle 2009) over all frames at once, started from the
filterbank-weighted spread of each band's power (not librosa's pseudo-inverse, whose SVD
costs more than the iterations); the magnitude is ``sqrt(P)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from melforge.core.stft import StftParams

#: FISTA iterations; on speech the magnitude error against the true STFT stops improving after about 30.
N_ITER = 30


def check_mel(mel_power: np.ndarray, mel_basis: np.ndarray, stft: StftParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a mel power spectrogram and its filterbank; returns both as float64.

    Args:
        mel_power: ``(frames, n_mels)`` non-negative mel power.
        mel_basis: ``(n_mels, bins)`` non-negative filterbank; ``bins == stft.n_bins`` if given.

    Raises:
        ValueError: wrong ranks or sizes, no frames, negative or non-finite values.
    """
    mel_power = np.asarray(mel_power, dtype=np.float64)
    mel_basis = np.asarray(mel_basis, dtype=np.float64)
    if mel_basis.ndim != 2:
        raise ValueError(f"mel_basis: expected shape (n_mels, bins), got {mel_basis.shape}")
    if stft is not None and mel_basis.shape[1] != stft.n_bins:
        raise ValueError(f"mel_basis: expected {stft.n_bins} bins (n_fft={stft.n_fft}), got {mel_basis.shape[1]}")
    if mel_power.ndim != 2 or mel_power.shape[1] != mel_basis.shape[0]:
        raise ValueError(f"mel_power: expected shape (frames, {mel_basis.shape[0]}), got {mel_power.shape}")
    if mel_power.shape[0] == 0:
        raise ValueError("mel_power: expected at least one frame, got 0")
    for what, arr in (("mel_power", mel_power), ("mel_basis", mel_basis)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{what}: holds NaN or inf values")
        if (arr < 0).any():
            raise ValueError(f"{what}: must be non-negative, found min {arr.min():.3g}")
    return mel_power, mel_basis


def _largest_eigenvalue(b_sparse, bt_sparse, n_iter: int = 50) -> float:
    """``‖B‖₂²`` (largest eigenvalue of ``BᵀB``) by power iteration, with 2% margin (an SVD on
    a busy machine costs more than all FISTA iterations)."""
    v = np.ones(b_sparse.shape[1])
    value = 0.0
    for _ in range(n_iter):
        w = bt_sparse @ (b_sparse @ v)
        value = float(np.linalg.norm(w))
        if value == 0.0:
            return 1.0
        v = w / value
    return 1.02 * value


def mel_to_linear_power(mel_power: np.ndarray, mel_basis: np.ndarray, n_iter: int = N_ITER) -> np.ndarray:
    """Non-negative least-squares linear power ``P (frames, bins)`` with ``P Bᵀ ≈ M``.

    Args:
        mel_power: ``(frames, n_mels)`` mel power ``M``.
        mel_basis: ``(n_mels, bins)`` filterbank ``B``.
        n_iter: FISTA iterations.

    Raises:
        ValueError: see :func:`check_mel`.
    """
    mel_power, basis = check_mel(mel_power, mel_basis)
    scale = max(float(mel_power.max()), 1e-30)  # work in [0, 1]; float64 keeps the decaying
    # iterates away from denormal numbers (which made a float32 version 10-50x slower)
    target = np.ascontiguousarray(mel_power.T) / scale  # (n_mels, frames)
    # the filterbank is sparse (each filter spans a few bins): sparse products are ~10x cheaper
    # than dense BLAS here and do not oversubscribe threads on a busy machine
    b_sparse = scipy.sparse.csr_matrix(basis)  # (n_mels, bins)
    bt_sparse = scipy.sparse.csr_matrix(basis.T)  # (bins, n_mels)
    lipschitz = _largest_eigenvalue(b_sparse, bt_sparse)
    # start: spread each band's power over its bins so that a flat spectrum is reproduced
    weight = bt_sparse @ basis.sum(axis=1)  # (bins,)
    p = (bt_sparse @ target) / np.maximum(weight, 1e-30)[:, None]  # (bins, frames), >= 0
    y, t = p.copy(), 1.0
    step = 1.0 / lipschitz
    for _ in range(n_iter):
        p_next = np.maximum(y - (bt_sparse @ (b_sparse @ y - target)) * step, 0.0)
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        y = p_next + ((t - 1.0) / t_next) * (p_next - p)
        p, t = p_next, t_next
    return np.ascontiguousarray(p.T) * scale


def mel_to_linear(mel_power: np.ndarray, mel_basis: np.ndarray, n_iter: int = N_ITER) -> np.ndarray:
    """Linear STFT magnitude ``(frames, bins)`` = ``sqrt`` of :func:`mel_to_linear_power`."""
    return np.sqrt(mel_to_linear_power(mel_power, mel_basis, n_iter))


class MelMagnitudeUpdate:
    """Re-estimates a linear magnitude from the current spectrogram so that its mel power
    matches a target: one multiplicative (Richardson–Lucy / KL-NMF) step
    ``P ← P ⊙ Bᵀ(M / (B P)) / Bᵀ1`` from ``P = |X|²``, returned as ``sqrt(P)``.

    Inside Griffin-Lim this keeps the fine structure that consistency restores (harmonics the
    mel filterbank smears) while holding the mel envelope to the target, instead of fitting a
    fixed NNLS magnitude as ``librosa.feature.inverse.mel_to_audio`` does.

    Args:
        mel_power: ``(frames, n_mels)`` target mel power ``M``.
        mel_basis: ``(n_mels, bins)`` filterbank ``B``.

    Raises:
        ValueError: see :func:`check_mel`.
    """

    def __init__(self, mel_power: np.ndarray, mel_basis: np.ndarray):
        mel_power, basis = check_mel(mel_power, mel_basis)
        self.target = np.ascontiguousarray(mel_power.T)  # (n_mels, frames)
        self.b = scipy.sparse.csr_matrix(basis)
        self.bt = scipy.sparse.csr_matrix(basis.T)
        weight = self.bt @ np.ones(basis.shape[0])  # (bins,) Bᵀ1
        # bins no filter covers get no energy (as NNLS gives them)
        self.inv_weight = np.where(weight > 0, 1.0 / np.maximum(weight, 1e-30), 0.0)[:, None]
        self.eps = 1e-12 * max(float(mel_power.max()), 1e-30)

    def __call__(self, spec: np.ndarray) -> np.ndarray:
        """``spec (frames, bins)`` complex → ``(frames, bins)`` float32 magnitude."""
        power = (spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2).T  # (bins, frames)
        ratio = self.target / np.maximum(self.b @ power, self.eps)  # (n_mels, frames)
        power *= (self.bt @ ratio) * self.inv_weight
        return np.ascontiguousarray(np.sqrt(power).T, dtype=np.float32)


def invert_mel(inverter, mel_power: np.ndarray, mel_basis: np.ndarray, stft: StftParams, *, length: int | None = None) -> np.ndarray:
    """Waveform ``(samples,)`` float32 from mel power ``(frames, n_mels)`` with any inverter.

    Uses the inverter's own ``invert_mel`` when it has one (e.g. the gradient inverter, which
    fits the mel target directly), otherwise :func:`mel_to_linear` then ``invert``.

    Raises:
        ValueError: see :func:`check_mel` and the inverter's ``invert``.
    """
    mel_power, mel_basis = check_mel(mel_power, mel_basis, stft)
    if hasattr(inverter, "invert_mel"):
        return inverter.invert_mel(mel_power, mel_basis, stft, length=length)
    return inverter.invert(mel_to_linear(mel_power, mel_basis), stft, length=length)
