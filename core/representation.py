"""Base classes of representations: audio ↔ the per-frame features a model is trained on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .normalization import Normalizer
from .stft import StftParams


@dataclass(frozen=True)
class MelAnalysis:
    """A mel representation's analysis.

    Attributes:
        stft: the STFT geometry.
        mel_basis: ``(n_mels, n_fft // 2 + 1)`` float32 filterbank.
        floor: the mel power floor before the log.
    """

    stft: StftParams
    mel_basis: np.ndarray
    floor: float


class Representation(ABC):
    """Features of mono audio, ``(frames, n_bins)`` per clip, and the way back to audio.

    A spectrogram representation (:class:`SpectrogramRepresentation`) has ``frames`` STFT
    frames of ``n_bins`` bins and goes back to audio through an inverter; a waveform
    representation (e.g. ``mu_law``) has one frame per sample, ``n_bins = 1``, and decodes
    directly. Features are *unnormalised*; :meth:`fit_normalizer` gives the map to the
    standardised values a model sees.

    Attributes:
        n_bins: feature bins per frame (e.g. ``n_mels``; 1 for a waveform).
    """

    n_bins: int
    #: What :meth:`to_audio` hands an inverter: ``"magnitude"`` (a linear STFT magnitude,
    #: ``Inverter.invert``), ``"mel_power"`` (``Inverter.invert_mel``), or ``None``: the features
    #: decode to audio by themselves (a waveform). Checked against ``Inverter.inputs``.
    inverter_input: str | None = None

    @property
    @abstractmethod
    def sr(self) -> int:
        """Sample rate in Hz the representation analyses at."""

    @property
    @abstractmethod
    def hop_length(self) -> int:
        """Samples per frame (the STFT hop; 1 for a waveform)."""

    @abstractmethod
    def analyze(self, audio: np.ndarray) -> np.ndarray:
        """Features of a waveform.

        Args:
            audio: ``(samples,)`` float waveform at :attr:`sr` Hz, nominally in [-1, 1].

        Returns:
            ``(frames, n_bins)`` float32 features.

        Raises:
            ValueError: audio that is empty, not 1-D or not finite.
        """

    @abstractmethod
    def to_audio(self, features: np.ndarray, inverter: "Inverter | None", *, length: int | None = None) -> np.ndarray:
        """The waveform the features stand for.

        Args:
            features: ``(frames, n_bins)`` unnormalised features.
            inverter: turns a spectrogram back into audio (a waveform representation ignores it).
            length: output length in samples, where the representation lets it be chosen.

        Returns:
            ``(samples,)`` float32 audio at :attr:`sr` Hz.

        Raises:
            ValueError: features of the wrong shape or not finite.
        """

    def to_image(self, features: np.ndarray) -> np.ndarray:
        """What a plot of the features shows: ``(frames, bins)``, one row per
        :attr:`image_hop_length` samples. Spectrograms show themselves."""
        return np.asarray(features)

    @property
    def image_hop_length(self) -> int:
        """Samples per row of :meth:`to_image`."""
        return self.hop_length

    def fit_normalizer(self, features: list[np.ndarray]) -> Normalizer:
        """The normalisation of these training features, ``(frames, n_bins)`` each: per-bin mean
        and standard deviation by default.

        Raises:
            ValueError: no features.
        """
        return Normalizer.fit(features)

    def config(self) -> dict:
        """The keyword arguments that rebuild this representation (stored in checkpoints)."""
        return {}

    def samples_for(self, frames: int) -> int:
        """Samples of audio that ``frames`` frames stand for (a waveform: one per frame)."""
        return int(frames) * self.hop_length

    def metrics_stft(self) -> StftParams:
        """The STFT geometry that spectral convergence and LSD of this representation's audio are
        measured with: a spectrogram's own; for a waveform, a Hann window of 1024 samples, hop 256."""
        return StftParams(self.sr, 1024, 256, 1024)

    def mel_analysis(self) -> "MelAnalysis":
        """The STFT, mel filterbank and power floor of a mel representation (what a vocoder that
        learns from mels needs).

        Raises:
            ValueError: not a mel representation (the default).
        """
        raise ValueError(f"{type(self).__name__} is not a mel representation (a vocoder needs log_mel features)")

    def check_features(self, features: np.ndarray, where: str = "features") -> np.ndarray:
        """``features`` as a ``(frames, n_bins)`` float array.

        Raises:
            ValueError: another shape, or NaN/inf values (names ``where``).
        """
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.n_bins:
            raise ValueError(f"{where}: expected shape (frames, {self.n_bins}), got {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError(f"{where}: hold NaN or inf values")
        return features


class SpectrogramRepresentation(Representation):
    """A time–frequency representation on an STFT grid; audio comes back through an inverter.

    Subclasses set :attr:`stft` (their analysis geometry) and implement :meth:`analyze` and
    :meth:`to_magnitude`; :meth:`to_audio` inverts that magnitude (a mel representation
    overrides it to hand the inverter its mel power, ``Inverter.invert_mel``).
    """

    stft: StftParams
    inverter_input = "magnitude"

    @property
    def sr(self) -> int:
        return self.stft.sr

    @property
    def hop_length(self) -> int:
        return self.stft.hop_length

    def samples_for(self, frames: int) -> int:
        return self.stft.samples_for(frames)

    def metrics_stft(self) -> StftParams:
        return self.stft

    @abstractmethod
    def to_magnitude(self, features: np.ndarray) -> np.ndarray:
        """The linear STFT magnitude the features stand for.

        Args:
            features: ``(frames, n_bins)`` unnormalised features.

        Returns:
            ``(frames, n_fft // 2 + 1)`` non-negative float magnitude (not power).
        """

    def to_audio(self, features: np.ndarray, inverter: "Inverter | None", *, length: int | None = None) -> np.ndarray:
        """``inverter.invert(to_magnitude(features))``: ``(samples,)`` float32 at :attr:`sr` Hz.

        Raises:
            ValueError: no inverter, or bad features (see :meth:`check_features`).
        """
        if inverter is None:
            raise ValueError(f"{type(self).__name__}: a spectrogram needs an inverter to become audio")
        features = self.check_features(features)
        return inverter.invert(self.to_magnitude(features), self.stft, length=length)
