"""8-bit μ-law companded waveform, the representation of the WaveNet baseline (van den Oord
et al. 2016 §2.2, eq. 2; seed 000 Appendix A.2). One frame per sample, one bin per frame.

``c(x) = sign(x) · log(1 + μ|x|) / log(1 + μ)`` maps audio in [-1, 1] onto [-1, 1]; it is
quantised to the ``μ + 1`` levels ``c_k = 2k / μ − 1`` (``k = 0 … μ``; 256 levels for μ = 255)
by rounding to the nearest level, and the features *are* ``c_k`` (not ``k``), so the categorical
head's grid (:mod:`melforge.plugins.categorical.maths`) and the model's inputs agree. Decoding
is ``x = sign(c) · ((1 + μ)^|c| − 1) / μ``, exact on the levels: ``analyze(to_audio(f)) == f``.

Conventions elsewhere: torchaudio's ``mu_law_encoding`` uses the same nearest-level rounding
(its integer is our ``k``); ``librosa.mu_compress(x, quantize=True)`` returns ``k − 128`` on
the levels but rounds *up* to the next level in between, and ``librosa.mu_expand(L,
quantize=True)`` reads its integer ``L`` as ``c = L / 128`` (a different grid), so only its
unquantised ``mu_expand(c_k)`` equals our decoding.
"""

from __future__ import annotations

import librosa
import numpy as np

from melforge.core.normalization import Normalizer
from melforge.core.representation import Representation

#: Defaults: 16 kHz audio, 8-bit μ-law (seed 000 Appendix A.2: VoxCeleb2 at 16 kHz).
SAMPLE_RATE = 16000
MU = 255
#: Geometry of the log-mel image of :meth:`MuLaw.to_image` (sample PNGs).
IMAGE_N_FFT = 1024
IMAGE_HOP = 256
IMAGE_N_MELS = 80
IMAGE_FLOOR = 1e-5


class MuLaw(Representation):
    """μ-law companded and quantised samples, ``(samples, 1)``.

    Args:
        sr: sample rate in Hz.
        mu: μ; the audio is quantised to ``μ + 1`` levels (255: 8 bits, 256 levels).

    Raises:
        ValueError: ``sr < 1`` or ``mu`` not an integer >= 1.
    """

    n_bins = 1

    def __init__(self, sr: int = SAMPLE_RATE, mu: int = MU):
        if int(sr) < 1:
            raise ValueError(f"mu_law: sr must be >= 1 Hz, got {sr}")
        if int(mu) != mu or int(mu) < 1:
            raise ValueError(f"mu_law: mu must be an integer >= 1, got {mu}")
        self._sr = int(sr)
        self.mu = int(mu)
        self.levels = self.mu + 1

    @property
    def sr(self) -> int:
        return self._sr

    @property
    def hop_length(self) -> int:
        """One frame per sample."""
        return 1

    # --- levels ---

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Audio ``(samples,)`` (clipped to [-1, 1]) → levels ``k = round((c(x) + 1) μ / 2)``,
        int64 ``(samples,)`` in ``[0, μ]`` (eq. 2 of van den Oord et al. 2016, then nearest
        level)."""
        x = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0)
        c = np.sign(x) * np.log1p(self.mu * np.abs(x)) / np.log1p(self.mu)  # (samples,) in [-1, 1]
        return np.clip(np.floor((c + 1.0) * self.mu / 2.0 + 0.5), 0, self.mu).astype(np.int64)

    def level_values(self, levels: np.ndarray) -> np.ndarray:
        """Levels ``k`` → companded values ``c_k = 2k / μ − 1`` (float64, same shape); the
        formula and operation order of :func:`melforge.plugins.categorical.maths.value_of`."""
        return (np.asarray(levels, dtype=np.float64) * 2.0) / self.mu - 1.0

    def decode(self, levels: np.ndarray) -> np.ndarray:
        """Levels ``k`` ``(samples,)`` → audio ``sign(c_k) · ((1 + μ)^|c_k| − 1) / μ``, float32
        ``(samples,)`` in [-1, 1]."""
        c = self.level_values(levels)
        return (np.sign(c) * np.expm1(np.abs(c) * np.log1p(self.mu)) / self.mu).astype(np.float32)

    def levels_of(self, features: np.ndarray) -> np.ndarray:
        """Features ``(samples, 1)`` (companded values, snapped to the nearest level) → levels
        int64 ``(samples,)``.

        Raises:
            ValueError: features not ``(samples, 1)`` or not finite.
        """
        features = self.check_features(features, "mu_law features")
        c = np.clip(features[:, 0].astype(np.float64), -1.0, 1.0)
        return np.floor((c + 1.0) * self.mu / 2.0 + 0.5).astype(np.int64)

    # --- Representation ---

    def analyze(self, audio: np.ndarray) -> np.ndarray:
        """``(samples,)`` waveform at ``sr`` Hz → ``(samples, 1)`` float32 features, the
        companded value ``c_k`` of each sample's level (audio outside [-1, 1] is clipped).

        Raises:
            ValueError: audio that is empty, not 1-D or not finite.
        """
        audio = np.asarray(audio)
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"mu_law: expected non-empty audio of shape (samples,), got {audio.shape}")
        if not np.isfinite(audio).all():
            raise ValueError("mu_law: audio holds NaN or inf")
        return self.level_values(self.encode(audio)).astype(np.float32)[:, None]

    def to_audio(self, features: np.ndarray, inverter=None, *, length: int | None = None) -> np.ndarray:
        """``(samples, 1)`` features → ``(samples,)`` float32 audio by μ-law expansion of the
        nearest levels; ``inverter`` is ignored (a waveform needs none), ``length`` truncates or
        zero-pads.

        Raises:
            ValueError: features not ``(samples, 1)`` or not finite.
        """
        audio = self.decode(self.levels_of(features))
        if length is not None:
            audio = np.pad(audio[: int(length)], (0, max(0, int(length) - audio.shape[0])))
        return audio

    def to_image(self, features: np.ndarray) -> np.ndarray:
        """A log-mel power spectrogram of the decoded audio for plots, ``(frames, 80)`` in nats
        (floor 1e-5), one row per :attr:`image_hop_length` samples (librosa, n_fft 1024, Hann)."""
        audio = self.to_audio(features)
        mel = librosa.feature.melspectrogram(
            y=audio, sr=self.sr, n_fft=IMAGE_N_FFT, hop_length=IMAGE_HOP, n_mels=IMAGE_N_MELS
        )  # (n_mels, frames)
        return np.log(np.maximum(mel, IMAGE_FLOOR)).T.astype(np.float32)

    @property
    def image_hop_length(self) -> int:
        """Samples per row of :meth:`to_image`."""
        return IMAGE_HOP

    def fit_normalizer(self, features: list[np.ndarray]) -> Normalizer:
        """The identity (mean 0, std 1): the values must stay on the categorical head's grid.

        Raises:
            ValueError: no features.
        """
        if not features:
            raise ValueError("mu_law.fit_normalizer needs at least one clip of training features")
        return Normalizer(np.zeros(1, np.float32), np.ones(1, np.float32))

    def config(self) -> dict:
        return {"sr": self.sr, "mu": self.mu}
