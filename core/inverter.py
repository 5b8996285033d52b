"""Base class of inverters: linear magnitude (or mel power) spectrogram → waveform."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .stft import StftParams


class Inverter(ABC):
    """Recovers a waveform whose STFT magnitude approximates a target.

    Implementations validate their input with
    :func:`melforge.core.validation.check_magnitude` and never return non-finite samples.
    An inverter that refines or starts from another one receives it as a constructor argument.
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

    def invert_mel(
        self, mel_power: np.ndarray, mel_basis: np.ndarray, stft: StftParams, *, length: int | None = None
    ) -> np.ndarray:
        """Invert a mel power spectrogram ``M ≈ |X|² Bᵀ``.

        The default maps it to a linear magnitude by non-negative least squares against the
        filterbank (:func:`melforge.inverters.mel_to_linear.mel_to_linear`) and calls
        :meth:`invert`; inverters that can fit the mel target directly override it.

        Args:
            mel_power: ``(frames, n_mels)`` non-negative mel power.
            mel_basis: ``(n_mels, n_fft // 2 + 1)`` non-negative filterbank ``B``.
            stft: the analysis geometry.
            length: output length in samples.

        Returns:
            ``(samples,)`` float32 waveform at ``stft.sr`` Hz.

        Raises:
            ValueError: see :func:`melforge.inverters.mel_to_linear.check_mel` (wrong shapes,
                negative or non-finite values).
        """
        from melforge.inverters.mel_to_linear import check_mel, mel_to_linear

        mel_power, mel_basis = check_mel(mel_power, mel_basis, stft)
        return self.invert(mel_to_linear(mel_power, mel_basis), stft, length=length)
