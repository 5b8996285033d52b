"""Sample-rate conversion shared by the datasets (librosa's default high-quality resampler)."""

from __future__ import annotations

import numpy as np


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``audio: (samples,)`` from ``sr_in`` Hz to ``sr_out`` Hz.

    Returns ``(round(samples * sr_out / sr_in),)`` float32, contiguous; the input itself
    (as float32) when the rates are equal.
    """
    import librosa  # deferred: librosa loads numba and scipy on first use; start-up does not pay for it

    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if int(sr_in) == int(sr_out):
        return audio
    out = librosa.resample(audio, orig_sr=int(sr_in), target_sr=int(sr_out))
    return np.ascontiguousarray(out, dtype=np.float32)
