"""Log-magnitude linear-frequency STFT, for magnitude-domain inversion and linear-spectrogram models.

``x = log(max(|STFT(y)|, floor))`` with a centred Hann-window STFT (librosa's convention, as
``log_mel``). Shapes are time-major: ``(frames, n_fft // 2 + 1)``.
"""

from __future__ import annotations

import numpy as np

from melforge.core.representation import SpectrogramRepresentation
from melforge.core.stft import StftParams, stft_magnitude

#: Defaults: 16 kHz speech, 64 ms window, 16 ms hop (as ``log_mel``).
SAMPLE_RATE = 16000
N_FFT = 1024
HOP_LENGTH = 256


class LogStft(SpectrogramRepresentation):
    """Natural-log STFT magnitude with a floor (linear frequency, ``n_fft // 2 + 1`` bins).

    Args:
        sr: sample rate in Hz.
        n_fft: FFT size in samples.
        hop_length: frame step in samples.
        win_length: Hann window length in samples (default ``n_fft``).
        floor: magnitude floor applied before the log (features are ``>= log(floor)`` nats).

    Raises:
        ValueError: inconsistent sizes (see :class:`StftParams`) or ``floor <= 0``.
    """

    def __init__(
        self,
        sr: int = SAMPLE_RATE,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        win_length: int | None = None,
        floor: float = 1e-5,
    ):
        self.stft = StftParams(int(sr), int(n_fft), int(hop_length), int(win_length or n_fft))
        if not floor > 0:
            raise ValueError(f"log_stft: floor must be > 0, got {floor}")
        self.floor = float(floor)
        self.n_bins = self.stft.n_bins

    def analyze(self, audio: np.ndarray) -> np.ndarray:
        """``(samples,)`` waveform at ``sr`` Hz → ``(frames, n_fft // 2 + 1)`` float32 log magnitude (nats)."""
        magnitude = stft_magnitude(audio, self.stft, np.float32)  # (frames, bins)
        return np.log(np.maximum(magnitude, self.floor)).astype(np.float32)

    def to_magnitude(self, features: np.ndarray) -> np.ndarray:
        """``(frames, n_fft // 2 + 1)`` log magnitude → linear magnitude ``exp(features)`` (float64).

        Raises:
            ValueError: features not of shape ``(frames, n_fft // 2 + 1)`` or not finite.
        """
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.n_bins:
            raise ValueError(f"log_stft.to_magnitude: expected shape (frames, {self.n_bins}), got {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError("log_stft.to_magnitude: features hold NaN or inf")
        return np.exp(features)

    def config(self) -> dict:
        return {
            "sr": self.stft.sr,
            "n_fft": self.stft.n_fft,
            "hop_length": self.stft.hop_length,
            "win_length": self.stft.win_length,
            "floor": self.floor,
        }
