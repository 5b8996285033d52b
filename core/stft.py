"""STFT geometry shared by representations and inverters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import check_audio


@dataclass(frozen=True)
class StftParams:
    """Short-time Fourier transform settings (Hann window, centred frames, as librosa).

    Attributes:
        sr: sample rate in Hz.
        n_fft: FFT size in samples; spectrograms have ``n_fft // 2 + 1`` frequency bins.
        hop_length: frame step in samples.
        win_length: Hann window length in samples (``<= n_fft``; zero-padded to ``n_fft``).

    Raises:
        ValueError: a non-positive size, or ``win_length > n_fft``.
    """

    sr: int
    n_fft: int
    hop_length: int
    win_length: int

    def __post_init__(self) -> None:
        for key in ("sr", "n_fft", "hop_length", "win_length"):
            value = getattr(self, key)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"StftParams.{key} must be a positive integer, got {value!r}")
        if self.win_length > self.n_fft:
            raise ValueError(f"StftParams.win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")

    @property
    def n_bins(self) -> int:
        """Number of frequency bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    def frames_for(self, n_samples: int) -> int:
        """Number of centred frames for a signal of ``n_samples`` samples."""
        return 1 + n_samples // self.hop_length

    def samples_for(self, n_frames: int) -> int:
        """Signal length in samples that ``n_frames`` centred frames cover."""
        return max(0, (n_frames - 1) * self.hop_length)


def stft_magnitude(audio: np.ndarray, stft: StftParams, dtype=np.float64) -> np.ndarray:
    """STFT magnitude of a waveform with the geometry of ``stft`` (librosa, Hann, centred).

    Args:
        audio: ``(samples,)`` waveform at ``stft.sr`` Hz.
        stft: analysis geometry.
        dtype: float type of the analysis and the result.

    Returns:
        ``(frames, n_fft // 2 + 1)`` magnitude, ``frames = 1 + samples // hop_length``.

    Raises:
        ValueError: audio that is not 1-D, empty or not finite.
    """
    import librosa  # deferred: librosa is slow to import, and the apps' start-up should not pay for it

    audio = check_audio(audio).astype(dtype, copy=False)
    spec = librosa.stft(
        audio, n_fft=stft.n_fft, hop_length=stft.hop_length, win_length=stft.win_length, window="hann", center=True
    )
    return np.ascontiguousarray(np.abs(spec).T)
