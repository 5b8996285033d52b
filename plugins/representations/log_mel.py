"""Log-mel power spectrogram, the representation MelNet models (seed 000 §2).

``x = log(max(mel_filterbank @ |STFT(y)|², floor))`` with librosa's Slaney-normalised mel
filterbank and a centred Hann-window STFT. Shapes are time-major: ``(frames, n_mels)``.
"""

from __future__ import annotations

import librosa
import numpy as np
from melforge.core.representation import MelAnalysis, SpectrogramRepresentation
from melforge.core.stft import StftParams, stft_magnitude

#: Defaults: 16 kHz speech, 64 ms window, 16 ms hop, 64 mel channels.
SAMPLE_RATE = 16000
N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 64


class LogMel(SpectrogramRepresentation):
    """Natural-log mel power spectrogram with a floor.

    Args:
        sr: sample rate in Hz.
        n_fft: FFT size in samples.
        hop_length: frame step in samples.
        win_length: Hann window length in samples (default ``n_fft``).
        n_mels: mel channels (feature bins per frame).
        fmin: lowest mel filter edge in Hz.
        fmax: highest mel filter edge in Hz (default ``sr / 2``).
        floor: power floor applied before the log (so features are ``>= log(floor)`` nats).

    Raises:
        ValueError: inconsistent sizes (see :class:`StftParams`), ``fmax > sr/2``,
            ``fmin >= fmax``, ``n_mels < 1`` or ``floor <= 0``.
    """

    def __init__(
        self,
        sr: int = SAMPLE_RATE,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        win_length: int | None = None,
        n_mels: int = N_MELS,
        fmin: float = 0.0,
        fmax: float | None = None,
        floor: float = 1e-5,
    ):
        self.stft = StftParams(int(sr), int(n_fft), int(hop_length), int(win_length or n_fft))
        fmax = float(sr) / 2 if fmax is None else float(fmax)
        if not 0 <= fmin < fmax <= sr / 2:
            raise ValueError(f"log_mel: need 0 <= fmin < fmax <= sr/2 = {sr / 2} Hz, got fmin={fmin}, fmax={fmax}")
        if int(n_mels) < 1:
            raise ValueError(f"log_mel: n_mels must be >= 1, got {n_mels}")
        if floor <= 0:
            raise ValueError(f"log_mel: floor must be > 0, got {floor}")
        self.n_bins = self.n_mels = int(n_mels)
        self.fmin, self.fmax, self.floor = float(fmin), fmax, float(floor)
        # (n_mels, n_fft // 2 + 1) Slaney-normalised triangular filters
        self.mel_basis = librosa.filters.mel(
            sr=self.stft.sr, n_fft=self.stft.n_fft, n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax
        ).astype(np.float32)

    def power_spectrogram(self, audio: np.ndarray) -> np.ndarray:
        """``(samples,)`` waveform → ``(frames, n_fft // 2 + 1)`` STFT power ``|STFT|²``."""
        return stft_magnitude(audio, self.stft, np.float32) ** 2  # (frames, bins)

    def analyze(self, audio: np.ndarray) -> np.ndarray:
        """``(samples,)`` waveform at ``sr`` Hz → ``(frames, n_mels)`` float32 log-mel power (nats)."""
        power = self.power_spectrogram(audio)  # (frames, bins)
        mel = power @ self.mel_basis.T  # (frames, n_mels)
        return np.log(np.maximum(mel, self.floor)).astype(np.float32)

    def to_magnitude(self, features: np.ndarray) -> np.ndarray:
        """``(frames, n_mels)`` log-mel → ``(frames, n_fft // 2 + 1)`` linear STFT magnitude.

        The mel power is mapped back to linear power by non-negative least squares against the
        filterbank (:func:`melforge.core.mel_inversion.mel_to_linear`, the NNLS every
        inverter shares), then square-rooted.

        Raises:
            ValueError: features not of shape ``(frames, n_mels)`` or not finite.
        """
        from melforge.core.mel_inversion import (
            mel_to_linear,  # deferred: importing melforge.core.mel_inversion takes 113 ms; start-up does not pay for it
        )

        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.n_mels:
            raise ValueError(f"log_mel.to_magnitude: expected shape (frames, {self.n_mels}), got {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError("log_mel.to_magnitude: features hold NaN or inf")
        return mel_to_linear(np.exp(features.astype(np.float64)), self.mel_basis)  # (frames, bins)

    def to_audio(self, features: np.ndarray, inverter, *, length: int | None = None) -> np.ndarray:
        """``(frames, n_mels)`` log-mel → ``(samples,)`` float32 audio: the inverter receives
        the mel power ``exp(features)`` and the filterbank (``Inverter.invert_mel``), so an
        inverter that fits the mel target directly can do so.

        Raises:
            ValueError: no inverter, or features not of shape ``(frames, n_mels)`` or not finite.
        """
        if inverter is None:
            raise ValueError("log_mel: a mel spectrogram needs an inverter to become audio")
        features = self.check_features(features, "log_mel features")
        mel_power = np.exp(features.astype(np.float64))  # (frames, n_mels)
        return inverter.invert_mel(mel_power, self.mel_basis, self.stft, length=length)

    inverter_input = "mel_power"

    def mel_analysis(self) -> MelAnalysis:
        return MelAnalysis(self.stft, np.asarray(self.mel_basis, dtype=np.float32), self.floor)

    def config(self) -> dict:
        return {
            "sr": self.stft.sr,
            "n_fft": self.stft.n_fft,
            "hop_length": self.stft.hop_length,
            "win_length": self.stft.win_length,
            "n_mels": self.n_mels,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "floor": self.floor,
        }
