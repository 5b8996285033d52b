"""The network's direct path (seed 002 §3.1): a frequency warping from the mel scale to the
linear STFT bins, applied to the log-mel power.

Each linear bin ``k`` (frequency ``f_k = k·sr/n_fft``) takes the log power of the mel bands
around it, interpolated linearly in mel between the two bands whose centres ``c_m`` enclose
``mel(f_k)`` (held at the edge bands outside them). A band's power is the sum of the bin powers
under its filter, ``M_m = Σ_k B[m, k] |X_k|²``, so for a spectrum flat over the band
``|X_k|² = M_m / g_m`` with ``g_m = Σ_k B[m, k]``:

    log |X̂_k|² = Σ_m W[k, m] (log M_m − log g_m)

``W (bins, n_mels)`` holds the interpolation weights (each row sums to 1). Band centres are the
centroids of the filters, ``c_m = Σ_k B[m, k] f_k / g_m``, so the warp depends on the filterbank
alone; empty filters (``g_m = 0``, e.g. narrow low bands of a short FFT) are left out.
"""

from __future__ import annotations

import librosa
import numpy as np


def mel_warp(mel_basis: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """The warp of the direct path for a filterbank.

    Args:
        mel_basis: ``(n_mels, bins)`` non-negative filterbank ``B`` (``bins = n_fft // 2 + 1``).
        sr: sample rate in Hz.

    Returns:
        ``(W, log_gain)``: ``W (bins, n_mels)`` interpolation weights (rows sum to 1, zero
        columns for empty filters) and ``log_gain (n_mels,)`` = ``log g_m`` (0 for empty filters).

    Raises:
        ValueError: not a 2-D non-negative filterbank, or every filter empty.
    """
    basis = np.asarray(mel_basis, dtype=np.float64)
    if basis.ndim != 2 or (basis < 0).any() or not np.isfinite(basis).all():
        raise ValueError(f"mel_warp: expected a non-negative finite (n_mels, bins) filterbank, got shape {basis.shape}")
    n_mels, n_bins = basis.shape
    freqs = np.linspace(0.0, sr / 2, n_bins)  # (bins,) Hz
    gain = basis.sum(axis=1)  # (n_mels,)
    used = np.flatnonzero(gain > 0)
    if used.size == 0:
        raise ValueError("mel_warp: every mel filter is empty")
    centres = librosa.hz_to_mel(basis[used] @ freqs / gain[used])  # (used,) mel, increasing
    position = librosa.hz_to_mel(freqs)  # (bins,) mel
    # fractional index of every bin among the band centres, clamped to the edge bands
    idx = np.interp(position, centres, np.arange(used.size, dtype=np.float64))
    lo = np.floor(idx).astype(int)
    hi = np.minimum(lo + 1, used.size - 1)
    frac = idx - lo
    warp = np.zeros((n_bins, n_mels))
    rows = np.arange(n_bins)
    np.add.at(warp, (rows, used[lo]), 1.0 - frac)
    np.add.at(warp, (rows, used[hi]), frac)
    log_gain = np.zeros(n_mels)
    log_gain[used] = np.log(gain[used])
    return warp, log_gain
