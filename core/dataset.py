"""Base class of datasets: a corpus of mono audio clips at a requested sample rate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AudioClip:
    """One recording.

    Attributes:
        id: stable identifier (e.g. a path relative to the corpus root); the train/valid split and
            the feature cache are keyed on it.
        audio: ``(samples,)`` float32 mono waveform at ``sr`` Hz, nominally in [-1, 1].
        sr: sample rate in Hz.
        speaker: speaker (or other class) label, ``None`` when the corpus has none.
    """

    id: str
    audio: np.ndarray
    sr: int
    speaker: str | None = None


class DatasetError(RuntimeError):
    """A dataset has no usable audio, or its source cannot be prepared; the message names the
    folder or package and what was expected."""


class AudioDataset(ABC):
    """A corpus of audio clips.

    Implementations prepare their source on first use (installing or decoding what they need,
    saying what they do), skip unreadable files with a warning naming each one and a count at
    the end, and raise :class:`DatasetError` when nothing usable remains.
    """

    @abstractmethod
    def clips(self, sr: int) -> Iterator[AudioClip]:
        """Yield every usable clip, mono, resampled to ``sr`` Hz, in a deterministic order.

        Raises:
            DatasetError: the corpus holds no usable clip (names the folder/source).
        """

    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever the clips would change (source, file list, options);
        the feature cache is keyed on it."""
