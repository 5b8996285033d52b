"""Base classes of representations: audio ↔ the per-frame features a model is trained on."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .normalization import Normalizer
from .stft import StftParams


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
    #: Whether features need an inverter to become audio (a spectrogram does; a waveform decodes itself).
    needs_inverter: bool = False

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
    needs_inverter = True

    @property
    def sr(self) -> int:
        return self.stft.sr

    @property
    def hop_length(self) -> int:
        return self.stft.hop_length

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
