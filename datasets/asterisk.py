"""Asterisk PBX voice prompts: real studio speech that installs from Debian.

Each language of the Debian ``asterisk-core-sounds-<lang>-g722`` packages is one professional
speaker (en: 568 prompts, about 25 min; en/fr/it/ru together about 100 min), stored as G.722 at
64 kbit/s, which decodes to 16 kHz. The language code is the speaker label.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import G722
import numpy as np
from melforge.core import progress
from melforge.core.dataset import AudioClip, AudioDataset, DatasetError

from .resample import resample
from .system_packages import ensure_debian_packages

#: Where the Debian packages put the prompts (one folder per voice, ``<lang>_<REGION>_<voice>``).
SOUNDS_DIR = Path("/usr/share/asterisk/sounds")
#: Sample rate of decoded G.722, Hz.
NATIVE_SR = 16000
#: G.722 bit rate of the packaged files, bit/s.
BIT_RATE = 64000
#: Bumped when decoding changes, so that feature caches keyed on the fingerprint are rebuilt.
PIPELINE_VERSION = 1


def debian_package(lang: str) -> str:
    """Name of the Debian package holding the G.722 prompts of ``lang`` (e.g. ``"en"``)."""
    return f"asterisk-core-sounds-{lang}-g722"


def _has_g722(folder: Path) -> bool:
    return folder.is_dir() and next(folder.rglob("*.g722"), None) is not None


def language_folder(lang: str, *, install: bool = True) -> Path:
    """The folder holding the ``.g722`` prompts of ``lang``, installing its package if needed.

    ``/usr/share/asterisk/sounds/<lang>`` is an alternatives link made by the non-G.722 package,
    so the voice folder ``<lang>_*`` (e.g. ``en_US_f_Allison``) is looked up directly.

    Raises:
        DatasetError: the package is missing and cannot be installed, or holds no ``.g722`` file.
    """
    if install:
        ensure_debian_packages(
            [debian_package(lang)], needed_path=SOUNDS_DIR / f"{lang}_*" / "**" / "*.g722"
        )
    candidates = [SOUNDS_DIR / lang] + sorted(
        p for p in SOUNDS_DIR.glob(f"{lang}_*") if not p.is_symlink()
    )
    for folder in candidates:
        if _has_g722(folder):
            return folder.resolve()
    raise DatasetError(
        f"no .g722 prompts for language {lang!r} under {SOUNDS_DIR}/{lang}_* "
        f"(expected from the Debian package {debian_package(lang)})"
    )


def decode_g722(data: bytes) -> np.ndarray:
    """Decode G.722 (64 kbit/s) bytes to ``audio: (samples,)`` float32 in [-1, 1] at 16 kHz.

    Uses a fresh decoder (the codec is stateful) from the PyPI package ``G722``.
    """
    pcm = np.asarray(G722.G722(NATIVE_SR, BIT_RATE).decode(data), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


class AsteriskPrompts(AudioDataset):
    """Asterisk voice prompts of one or more languages, one speaker per language.

    Args:
        languages: language codes of ``asterisk-core-sounds-<lang>-g722`` (en, fr, it, ru, ...);
            each is installed on first use when running as root.
        min_duration: files shorter than this (seconds) are skipped with a warning.
        exclude_folders: top-level sub-folders left out; the default drops ``silence/`` (ten
            files of 1-10 s of digital silence, not speech).

    Clip ids are ``"<lang>/<path relative to the voice folder>"`` (e.g. ``"en/digits/1.g722"``),
    the speaker label is the language code.
    """

    def __init__(
        self,
        languages: Sequence[str] = ("en",),
        min_duration: float = 0.1,
        exclude_folders: Sequence[str] = ("silence",),
    ):
        if isinstance(languages, str):
            languages = (languages,)
        if not languages:
            raise ValueError("AsteriskPrompts needs at least one language")
        self.languages = tuple(languages)
        self.min_duration = float(min_duration)
        self.exclude_folders = tuple(exclude_folders)

    def _files(self, lang: str) -> tuple[Path, list[Path]]:
        """Voice folder of ``lang`` and its ``.g722`` files, sorted by relative path."""
        folder = language_folder(lang)
        files = [
            f
            for f in folder.rglob("*.g722")
            if f.relative_to(folder).parts[0] not in self.exclude_folders
        ]
        return folder, sorted(files, key=lambda f: f.relative_to(folder).as_posix())

    def clips(self, sr: int) -> Iterator[AudioClip]:
        """Yield every usable prompt, language by language, files in sorted order.

        Each clip's ``audio`` is ``(samples,)`` float32 mono in [-1, 1] at ``sr`` Hz (resampled
        from 16 kHz with librosa when ``sr != 16000``).

        Warns:
            UserWarning: for each file skipped (too short or undecodable, naming it), and one
                summary with the count per language.

        Raises:
            DatasetError: a language has no usable prompt (names its folder), or its package is
                missing and cannot be installed.
        """
        for lang in self.languages:
            folder, files = self._files(lang)
            skipped = 0
            used = 0
            for path in progress.counted(files, f"melforge: decoding Asterisk {lang} prompts", unit="prompt"):
                rel = path.relative_to(folder).as_posix()
                try:
                    audio = decode_g722(path.read_bytes())
                except Exception as exc:  # a damaged file must not stop the corpus
                    warnings.warn(f"skipping {path}: cannot decode G.722 ({exc})", stacklevel=2)
                    skipped += 1
                    continue
                duration = len(audio) / NATIVE_SR
                if duration < self.min_duration:
                    warnings.warn(
                        f"skipping {path}: {duration:.3f} s is shorter than "
                        f"min_duration={self.min_duration} s",
                        stacklevel=2,
                    )
                    skipped += 1
                    continue
                used += 1
                yield AudioClip(
                    id=f"{lang}/{rel}", audio=resample(audio, NATIVE_SR, sr), sr=sr, speaker=lang
                )
            if skipped:
                warnings.warn(
                    f"skipped {skipped} of {len(files)} Asterisk {lang} prompts in {folder}",
                    stacklevel=2,
                )
            if used == 0:
                raise DatasetError(
                    f"no usable .g722 prompt (>= {self.min_duration} s) in {folder} "
                    f"for language {lang!r}"
                )

    def fingerprint(self) -> str:
        """Hash of the languages, options, and every file's relative path and size (bytes)."""
        h = hashlib.sha256()
        h.update(
            repr(
                ("AsteriskPrompts", PIPELINE_VERSION, self.languages, self.min_duration,
                 self.exclude_folders)
            ).encode()
        )
        for lang in self.languages:
            folder, files = self._files(lang)
            for path in files:
                rel = path.relative_to(folder).as_posix()
                h.update(f"{lang}/{rel}\0{path.stat().st_size}\n".encode())
        return f"asterisk-{'-'.join(self.languages)}-{h.hexdigest()[:16]}"
