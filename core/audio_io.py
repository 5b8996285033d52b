"""Reading audio files and writing them atomically (soundfile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from .atomic import atomic_path
from .validation import check_audio


def read_audio(path: str | Path, sr: int) -> np.ndarray:
    """Read an audio file as mono float32 ``(samples,)`` at ``sr`` Hz (channels averaged,
    resampled with librosa when the file's rate differs).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable, empty or non-finite audio (names the file).
    """
    import librosa  # deferred: librosa loads numba and scipy on first use; start-up does not pay for it

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input: no such file {str(path)!r}")
    try:
        audio, file_sr = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except RuntimeError as exc:  # soundfile's error for unknown formats
        raise ValueError(f"input: cannot read {str(path)!r} as audio: {exc}") from exc
    audio = check_audio(audio.mean(axis=1), f"input {path.name}")
    if file_sr != sr:
        audio = librosa.resample(audio, orig_sr=file_sr, target_sr=sr).astype(np.float32)
    return audio


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
