"""Any folder of audio files (wav, flac, ogg), read with soundfile."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from melforge.core import progress
from melforge.core.dataset import AudioClip, AudioDataset, DatasetError

from .resample import resample

#: Bumped when reading changes, so that feature caches keyed on the fingerprint are rebuilt.
PIPELINE_VERSION = 1


class AudioFolder(AudioDataset):
    """Every audio file under ``root`` (recursively), mixed to mono.

    Args:
        root: the folder.
        extensions: file name endings read (case-insensitive, without the dot).
        min_duration: files shorter than this (seconds) are skipped with a warning.

    Clip ids are paths relative to ``root`` (``"alice/001.wav"``); the speaker label is the
    first sub-folder (``"alice"``), or ``None`` for files directly in ``root``.
    """

    def __init__(
        self,
        root: str | Path,
        extensions: Sequence[str] = ("wav", "flac", "ogg"),
        min_duration: float = 0.1,
    ):
        self.root = Path(root).expanduser()
        if isinstance(extensions, str):
            extensions = (extensions,)
        self.extensions = tuple(sorted({e.lower().lstrip(".") for e in extensions}))
        self.min_duration = float(min_duration)

    def _expected(self) -> str:
        return ", ".join(f".{e}" for e in self.extensions)

    def files(self) -> list[Path]:
        """The audio files under ``root``, sorted by relative path.

        Raises:
            DatasetError: ``root`` is not a folder (names it and the extensions expected).
        """
        if not self.root.is_dir():
            raise DatasetError(
                f"audio folder {self.root} does not exist or is not a folder "
                f"(expected {self._expected()} files in it)"
            )
        found = [
            p
            for p in self.root.rglob("*")
            if p.suffix.lower().lstrip(".") in self.extensions and p.is_file()
        ]
        return sorted(found, key=lambda p: p.relative_to(self.root).as_posix())

    def _read(self, path: Path) -> tuple[np.ndarray, int]:
        """``(audio (samples,) float32 mono, sr)``: channels averaged."""
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
        return data.mean(axis=1, dtype=np.float32), int(sr)

    def clips(self, sr: int) -> Iterator[AudioClip]:
        """Yield every readable file of at least ``min_duration`` seconds, in sorted order.

        Each clip's ``audio`` is ``(samples,)`` float32, the mean over the file's channels,
        resampled to ``sr`` Hz with librosa when the file's rate differs.

        Warns:
            UserWarning: for each file skipped (unreadable, corrupt, empty or too short, naming
                it), and one summary with the count.

        Raises:
            DatasetError: no usable file (names ``root`` and the extensions expected).
        """
        files = self.files()
        skipped = 0
        used = 0
        for path in progress.counted(files, f"melforge: reading audio files from {self.root}", unit="file"):
            rel = path.relative_to(self.root)
            unreadable = _unreadable(path)
            if unreadable:
                warnings.warn(f"skipping {path}: {unreadable}", stacklevel=2)
                skipped += 1
                continue
            try:
                audio, file_sr = self._read(path)
            except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/OSError
                warnings.warn(f"skipping {path}: cannot read it ({exc})", stacklevel=2)
                skipped += 1
                continue
            duration = len(audio) / file_sr
            if duration < self.min_duration or not np.all(np.isfinite(audio)):
                why = (
                    "non-finite samples"
                    if duration >= self.min_duration
                    else f"{duration:.3f} s is shorter than min_duration={self.min_duration} s"
                )
                warnings.warn(f"skipping {path}: {why}", stacklevel=2)
                skipped += 1
                continue
            used += 1
            speaker = rel.parts[0] if len(rel.parts) > 1 else None
            yield AudioClip(
                id=rel.as_posix(), audio=resample(audio, file_sr, sr), sr=sr, speaker=speaker
            )
        if skipped:
            warnings.warn(f"skipped {skipped} of {len(files)} files in {self.root}", stacklevel=2)
        if used == 0:
            raise DatasetError(
                f"no usable audio file in {self.root} (expected {self._expected()} files of at "
                f"least {self.min_duration} s, searched recursively)"
            )

    def fingerprint(self) -> str:
        """Hash of the folder, options, and every file's relative path, size and mtime.

        Raises:
            DatasetError: ``root`` is not a folder.
        """
        h = hashlib.sha256()
        h.update(
            repr(
                ("AudioFolder", PIPELINE_VERSION, str(self.root.resolve()), self.extensions,
                 self.min_duration)
            ).encode()
        )
        for path in self.files():
            st = path.stat()
            rel = path.relative_to(self.root).as_posix()
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return f"audio_folder-{h.hexdigest()[:16]}"


def _unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be opened for reading (``"permission denied (...)"``), or ``None``.
    Checked before libsndfile opens it, which reports a refused open as "System error"."""
    try:
        with open(path, "rb"):
            return None
    except PermissionError:
        return f"permission denied (this user, uid {os.getuid()}, may not read it)"
    except OSError as exc:
        return f"cannot open it ({exc.strerror or exc})"
