"""Piano music: Bach chorales from music21's corpus, rendered on a sampled grand piano.

Each chorale score is written to MIDI by music21, every non-drum part is set to General-MIDI
program 0 (acoustic grand) and rendered with FluidSynth (FluidR3_GM). Renders are cached as mono
float wav files under ``cache_dir("piano", ...)``, so only the first use pays (about 1 s per
chorale).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from melforge.core.atomic import atomic_write
from melforge.core.dataset import AudioClip, AudioDataset, DatasetError
from melforge.core.paths import cache_dir

from .fluidsynth import GAIN, render_midi_file, render_midi_notes, set_program
from .resample import resample

__all__ = ["BachChoralesPiano", "chorale_names", "render_midi_notes"]

#: Bumped when rendering changes; part of the cache folder and of the fingerprint.
RENDER_VERSION = 1


def chorale_names() -> list[str]:
    """File stems of music21's Bach chorales (e.g. ``"bwv10.7"``), unique, sorted."""
    from music21 import corpus

    names = corpus.chorales.Iterator(returnType="filename")
    return sorted({str(n).replace("\\", "/").rsplit("/", 1)[-1] for n in names})


def _score_path(stem: str) -> Path:
    """The corpus file of chorale ``stem``; MusicXML preferred when it exists in two formats."""
    from music21 import corpus

    found = corpus.getWork(stem)
    paths = sorted(map(Path, found if isinstance(found, list) else [found]),
                   key=lambda p: (p.suffix != ".mxl", str(p)))
    if not paths:
        raise DatasetError(f"music21's corpus has no file for chorale {stem}")
    return paths[0]


class BachChoralesPiano(AudioDataset):
    """The first ``chorales`` Bach chorales (sorted by BWV file stem) played on a grand piano.

    Args:
        chorales: how many chorales (of about 350 unique ones); ``None`` for all.
        sr_render: FluidSynth's sample rate, Hz; :meth:`clips` resamples from it.
        seconds: keep only the first ``seconds`` of each chorale; ``None`` keeps all
            (typically 30-90 s each).

    Clip ids are ``"bach/<stem>"`` (e.g. ``"bach/bwv10.7"``); the speaker label is ``None``.
    """

    def __init__(
        self, chorales: int | None = 12, sr_render: int = 22050, seconds: float | None = None
    ):
        if chorales is not None and chorales < 1:
            raise ValueError(f"chorales must be >= 1 or None, got {chorales}")
        if seconds is not None and seconds <= 0:
            raise ValueError(f"seconds must be > 0 or None, got {seconds}")
        self.chorales = None if chorales is None else int(chorales)
        self.sr_render = int(sr_render)
        self.seconds = None if seconds is None else float(seconds)

    def names(self) -> list[str]:
        """Stems of the chorales used, in clip order.

        Raises:
            DatasetError: fewer chorales in the corpus than asked for.
        """
        names = chorale_names()
        if self.chorales is not None and self.chorales > len(names):
            raise DatasetError(
                f"asked for {self.chorales} Bach chorales but music21's corpus holds {len(names)}"
            )
        return names if self.chorales is None else names[: self.chorales]

    def cache_folder(self) -> Path:
        """Where the mono renders of this sample rate are kept (created if missing)."""
        return cache_dir("piano", f"bach-v{RENDER_VERSION}-sr{self.sr_render}")

    def _render(self, stem: str, target: Path) -> None:
        """Score → MIDI (music21) → program 0 (mido) → FluidSynth → mono wav at ``target``."""
        from music21 import converter

        with tempfile.TemporaryDirectory(prefix="melforge-piano-") as tmp:
            raw, piano = Path(tmp) / "score.mid", Path(tmp) / "piano.mid"
            converter.parse(_score_path(stem)).write("midi", fp=str(raw))
            set_program(raw, piano, program=0)
            audio = render_midi_file(piano, self.sr_render)  # (samples,)
        if not np.any(audio):
            raise DatasetError(f"FluidSynth rendered chorale {stem} as silence")

        def write(tmp: Path) -> None:
            sf.write(str(tmp), audio, self.sr_render, format="WAV", subtype="FLOAT")

        atomic_write(target, write)

    def prepare(self) -> list[Path]:
        """Render every chorale not yet in the cache; returns the cached wav paths in clip order.

        Raises:
            DatasetError: FluidSynth is missing and cannot be installed, or a render fails.
        """
        folder = self.cache_folder()
        paths = [folder / f"{stem}.wav" for stem in self.names()]
        missing = [p for p in paths if not p.exists()]
        if missing:
            print(
                f"melforge: rendering {len(missing)} Bach chorales with FluidSynth into {folder} "
                "(first use)…",
                file=sys.stderr,
            )
            for path in missing:
                self._render(path.stem, path)
        return paths

    def clips(self, sr: int) -> Iterator[AudioClip]:
        """Yield each chorale as ``(samples,)`` float32 mono at ``sr`` Hz (rendered on first use,
        then read from the cache), cut to ``seconds`` when set.

        Raises:
            DatasetError: FluidSynth is missing and cannot be installed, or a render fails.
        """
        for path in self.prepare():
            audio, file_sr = sf.read(str(path), dtype="float32")  # (samples,)
            if self.seconds is not None:
                audio = audio[: int(round(self.seconds * file_sr))]
            yield AudioClip(
                id=f"bach/{path.stem}", audio=resample(audio, file_sr, sr), sr=sr, speaker=None
            )

    def fingerprint(self) -> str:
        """Hash of the chorale list, the options, the music21 version and the render settings."""
        import music21

        h = hashlib.sha256()
        h.update(
            repr(
                ("BachChoralesPiano", RENDER_VERSION, GAIN, self.names(), self.sr_render,
                 self.seconds, music21.__version__)
            ).encode()
        )
        return f"bach_piano-{h.hexdigest()[:16]}"
