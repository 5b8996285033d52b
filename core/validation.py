"""Input checks shared by representations and inverters; each error says what was expected."""

from __future__ import annotations

import numpy as np



def check_audio(audio: np.ndarray, what: str = "audio") -> np.ndarray:
    """Return ``audio`` as a contiguous float32 ``(samples,)`` array.

    Raises:
        ValueError: not 1-D, empty, or holding NaN/inf (message names ``what``).
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"{what}: expected a mono waveform of shape (samples,), got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError(f"{what}: expected a non-empty waveform, got 0 samples")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise ValueError(f"{what}: waveform holds NaN or inf samples")
    return audio


def check_magnitude(magnitude: np.ndarray, stft: "StftParams", what: str = "magnitude") -> np.ndarray:
    """Return ``magnitude`` as a float64 ``(frames, n_fft // 2 + 1)`` array.

    Raises:
        ValueError: wrong rank, wrong bin count for ``stft.n_fft``, no frames, negative or
            non-finite values (message names ``what`` and what was expected).
    """
    magnitude = np.asarray(magnitude)
    if magnitude.ndim != 2:
        raise ValueError(f"{what}: expected shape (frames, {stft.n_bins}), got shape {magnitude.shape}")
    if magnitude.shape[1] != stft.n_bins:
        raise ValueError(
            f"{what}: expected {stft.n_bins} frequency bins (n_fft={stft.n_fft}), got {magnitude.shape[1]}; "
            "was it computed with another n_fft?"
        )
    if magnitude.shape[0] == 0:
        raise ValueError(f"{what}: expected at least one frame, got 0")
    magnitude = np.asarray(magnitude, dtype=np.float64)
    if not np.isfinite(magnitude).all():
        raise ValueError(f"{what}: holds NaN or inf values")
    if (magnitude < 0).any():
        raise ValueError(f"{what}: a magnitude must be non-negative, found min {magnitude.min():.3g}")
    return magnitude
