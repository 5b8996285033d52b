"""Writing audio files atomically (soundfile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from .atomic import atomic_path


def write_wav(path: str | Path, audio: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    """Write ``audio: (samples,)`` at ``sr`` Hz as WAV (``subtype`` as soundfile names it:
    ``"PCM_16"``, ``"FLOAT"``, ...), atomically. For integer subtypes, peaks above 1 are scaled
    down to 0.99 rather than clipped.

    Raises:
        ValueError: audio not 1-D or not finite.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or not np.isfinite(audio).all():
        raise ValueError(f"write_wav {path}: expected finite (samples,) audio, got shape {audio.shape}")
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.0 and not subtype.startswith(("FLOAT", "DOUBLE")):
        audio = audio * (0.99 / peak)
    with atomic_path(path) as tmp:
        sf.write(tmp, audio, int(sr), subtype=subtype, format="WAV")
    return Path(path)
