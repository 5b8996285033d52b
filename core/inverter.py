"""Base class of inverters: linear magnitude spectrogram → waveform."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .stft import StftParams


class Inverter(ABC):
    """Recovers a waveform whose STFT magnitude approximates a target.

    Implementations validate their input with
    :func:`melforge.core.validation.check_magnitude` and never return non-finite samples.
    """

    @abstractmethod
    def invert(self, magnitude: np.ndarray, stft: StftParams, *, length: int | None = None) -> np.ndarray:
        """Invert a magnitude spectrogram.

        Args:
            magnitude: ``(frames, n_fft // 2 + 1)`` non-negative linear STFT magnitude.
            stft: the analysis geometry the magnitude was computed with.
            length: output length in samples (default ``(frames - 1) * hop_length``).

        Returns:
            ``(samples,)`` float32 waveform at ``stft.sr`` Hz.

        Raises:
            ValueError: a magnitude that is not 2-D, has the wrong number of bins, is negative
                or not finite.
        """
