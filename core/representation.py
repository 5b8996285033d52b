"""Base class of representations: audio ↔ per-frame features a model is trained on."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .stft import StftParams


class Representation(ABC):
    """A time-frequency representation of mono audio.

    Subclasses set :attr:`stft` (their analysis geometry) and :attr:`n_bins` (feature bins per
    frame, e.g. ``n_mels``) and implement :meth:`analyze` and :meth:`to_magnitude`. Features are
    *unnormalised*; per-bin normalisation fitted on the training set is
    :class:`melforge.core.normalization.Normalizer`'s job.
    """

    stft: StftParams
    n_bins: int

    @property
    def sr(self) -> int:
        """Sample rate in Hz the representation analyses at."""
        return self.stft.sr

    @abstractmethod
    def analyze(self, audio: np.ndarray) -> np.ndarray:
        """Features of a waveform.

        Args:
            audio: ``(samples,)`` float waveform at :attr:`sr` Hz, nominally in [-1, 1].

        Returns:
            ``(frames, n_bins)`` float32 features, ``frames = 1 + samples // hop_length``.

        Raises:
            ValueError: audio that is empty, not 1-D or not finite.
        """

    @abstractmethod
    def to_magnitude(self, features: np.ndarray) -> np.ndarray:
        """The linear STFT magnitude the features stand for (what inverters take).

        Args:
            features: ``(frames, n_bins)`` unnormalised features.

        Returns:
            ``(frames, n_fft // 2 + 1)`` non-negative float magnitude (not power).
        """

    def config(self) -> dict:
        """The keyword arguments that rebuild this representation (stored in checkpoints)."""
        return {}
