"""Piano music: Bach chorales from music21's corpus, rendered on a sampled grand piano.

Each chorale score is written to MIDI by music21, every non-drum part is set to General-MIDI
program 0 (acoustic grand) and rendered with FluidSynth (FluidR3_GM). Renders are cached as mono
float wav files under ``cache_dir("piano", ...)``, so only the first use pays (about 1 s per
chorale). :class:`RenderedScores` is the score → MIDI → program → FluidSynth → cache pipeline,
shared with other score datasets (:mod:`melforge.datasets.gm_music`).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import warnings
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
from melforge.core import progress
from melforge.core.atomic import atomic_write
from melforge.core.dataset import AudioClip, AudioDataset, DatasetError
from melforge.core.paths import cache_dir

from .fluidsynth import (
    GAIN,
    render_midi_file,
    render_midi_notes,
    set_program,
    truncate_midi,
)
from .resample import resample

__all__ = ["BachChoralesPiano", "RenderedScores", "chorale_names", "render_midi_notes"]

#: Bumped when rendering changes; part of the cache folder and of the fingerprint.
RENDER_VERSION = 1


def chorale_names() -> list[str]:
    """File stems of music21's Bach chorales (e.g. ``"bwv10.7"``), unique, sorted."""
    from music21 import (
        corpus,  # deferred: importing music21 takes 308 ms; start-up does not pay for it
    )

    names = corpus.chorales.Iterator(returnType="filename")
    return sorted({str(n).replace("\\", "/").rsplit("/", 1)[-1] for n in names})


def _score_path(stem: str) -> Path:
    """The corpus file of chorale ``stem``; MusicXML preferred when it exists in two formats."""
    from music21 import (
        corpus,  # deferred: importing music21 takes 308 ms; start-up does not pay for it
    )

    found = corpus.getWork(stem)
    paths = sorted(map(Path, found if isinstance(found, list) else [found]),
                   key=lambda p: (p.suffix != ".mxl", str(p)))
    if not paths:
        raise DatasetError(f"music21's corpus has no file for chorale {stem}")
    return paths[0]


class RenderedScores(AudioDataset):
    """music21 scores rendered with FluidSynth on a General-MIDI program each, cached as wav.

    Subclasses say which scores (:meth:`names`, :meth:`score_path`), on which program
    (:meth:`program`), where the renders are kept (:meth:`cache_folder`, :meth:`cache_file`) and
    how clips are named (:meth:`clip_id`). Each score is written to MIDI by music21, every
    non-drum part is set to its program (:func:`melforge.datasets.fluidsynth.set_program`) and
    rendered with FluidSynth at ``sr_render`` Hz into a mono float wav, on FluidR3_GM unless
    :meth:`soundfont` names another.

    Args:
        sr_render: FluidSynth's sample rate, Hz; ``None`` renders at the rate :meth:`clips` asks
            for (one cache per rate, no resampling).
        seconds: keep only the first ``seconds`` of each score; ``None`` keeps all.
        skip_failures: True: a score that music21 or FluidSynth cannot render is skipped with a
            warning naming it (remembered in the cache) and a count at the end; False: it raises.

    Raises:
        ValueError: ``seconds <= 0`` or a non-positive ``sr_render``.
    """

    def __init__(self, sr_render: int | None = 22050, seconds: float | None = None, *, skip_failures: bool = False):
        if seconds is not None and seconds <= 0:
            raise ValueError(f"seconds must be > 0 or None, got {seconds}")
        if sr_render is not None and sr_render <= 0:
            raise ValueError(f"sr_render must be > 0 or None, got {sr_render}")
        self.sr_render = None if sr_render is None else int(sr_render)
        self.seconds = None if seconds is None else float(seconds)
        self.skip_failures = bool(skip_failures)

    @abstractmethod
    def names(self) -> list[str]:
        """Names of the scores used, in clip order."""

    @abstractmethod
    def score_path(self, name: str) -> Path:
        """The corpus file of score ``name``."""

    @abstractmethod
    def program(self, name: str) -> int:
        """General-MIDI program (0-based) that plays score ``name``."""

    @abstractmethod
    def cache_folder(self, sr: int) -> Path:
        """Folder of the renders at ``sr`` Hz (created if missing)."""

    @abstractmethod
    def clip_id(self, name: str) -> str:
        """Clip id of score ``name``."""

    def transposition(self, name: str) -> int:
        """Semitones score ``name`` is transposed by before it is rendered (default 0)."""
        return 0

    def soundfont(self, name: str) -> str:
        """The soundfont that renders score ``name``: a key of
        :data:`melforge.datasets.fluidsynth.SOUNDFONTS` (default ``"fluidr3"``)."""
        return "fluidr3"

    def render_seconds(self) -> float | None:
        """Seconds of each score given to FluidSynth (the MIDI is cut there first); ``None``
        (default) renders whole scores, so one cache serves every ``seconds``."""
        return None

    def cache_file(self, name: str, sr: int) -> Path:
        """The cached render of ``name`` at ``sr`` Hz (default ``<folder>/<name>.wav``)."""
        return self.cache_folder(sr) / f"{name}.wav"

    def _render(self, name: str, target: Path, sr: int) -> None:
        """Score → MIDI (music21) → program (mido) → FluidSynth → mono wav at ``target``."""
        from music21 import (  # deferred: importing music21 takes 308 ms; start-up does not pay for it
            converter,
            stream,
        )

        with tempfile.TemporaryDirectory(prefix="melforge-scores-") as tmp:
            raw, played = Path(tmp) / "score.mid", Path(tmp) / "played.mid"
            score = converter.parse(self.score_path(name))
            if isinstance(score, stream.Opus):  # an .abc file of several tunes: its first one
                score = score.scores[0]
            shift = self.transposition(name)
            if shift:
                score = score.transpose(shift)
            score.write("midi", fp=str(raw))
            if self.render_seconds() is not None:
                truncate_midi(raw, raw, self.render_seconds())
            set_program(raw, played, program=self.program(name))
            audio = render_midi_file(played, sr, soundfont=self.soundfont(name))  # (samples,)
        if not np.any(audio):
            raise DatasetError(f"FluidSynth rendered score {name} as silence")

        def write(tmp: Path) -> None:
            sf.write(str(tmp), audio, sr, format="WAV", subtype="FLOAT")

        atomic_write(target, write)

    def prepare(self, sr: int | None = None) -> list[Path]:
        """Render every score not yet in the cache; returns the cached wav paths in clip order
        (without the skipped scores). ``sr`` is the render rate when ``sr_render`` is None.

        Raises:
            DatasetError: FluidSynth is missing and cannot be installed, a render fails (unless
                ``skip_failures``), or every score failed.
        """
        sr = self._render_rate(sr)
        names = self.names()
        paths = [self.cache_file(name, sr) for name in names]
        failed_marks = [path.with_suffix(".failed") for path in paths]
        missing = [(n, p) for n, p, f in zip(names, paths, failed_marks) if not p.exists() and not f.exists()]
        if missing:
            print(
                f"melforge: rendering {len(missing)} scores with FluidSynth into "
                f"{paths[0].parent} (first use)…",
                file=sys.stderr,
            )
            with progress.ticker(len(missing), "melforge: rendering", unit="score") as shown:
                for name, path in missing:
                    try:
                        self._render(name, path, sr)
                    except Exception as err:  # music21 raises many kinds on scores it cannot convert
                        if not self.skip_failures:
                            raise
                        warnings.warn(f"melforge: skipping score {name}: {type(err).__name__}: {err}", stacklevel=2)
                        atomic_write(path.with_suffix(".failed"), lambda tmp, e=err: tmp.write_text(f"{type(e).__name__}: {e}\n"))
                    shown.update(1)
        kept = [p for p in paths if p.exists()]
        if len(kept) < len(paths):
            warnings.warn(f"melforge: {len(paths) - len(kept)} of {len(paths)} scores could not be rendered (see {paths[0].parent}/*.failed)", stacklevel=2)
        if not kept:
            raise DatasetError(f"none of the {len(paths)} scores could be rendered (see {paths[0].parent})")
        return kept

    def _render_rate(self, sr: int | None) -> int:
        if self.sr_render is not None:
            return self.sr_render
        if sr is None:
            raise ValueError("sr_render is None: prepare(sr) needs the sample rate to render at")
        return int(sr)

    def clips(self, sr: int) -> Iterator[AudioClip]:
        """Yield each score as ``(samples,)`` float32 mono at ``sr`` Hz (rendered on first use,
        then read from the cache), cut to ``seconds`` when set.

        Raises:
            DatasetError: see :meth:`prepare`.
        """
        by_file = {self.cache_file(n, self._render_rate(sr)): n for n in self.names()}
        for path in self.prepare(sr):
            audio, file_sr = sf.read(str(path), dtype="float32")  # (samples,)
            if self.seconds is not None:
                audio = audio[: int(round(self.seconds * file_sr))]
            yield AudioClip(id=self.clip_id(by_file[path]), audio=resample(audio, file_sr, sr), sr=sr, speaker=None)


class BachChoralesPiano(RenderedScores):
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
        super().__init__(sr_render, seconds)
        self.chorales = None if chorales is None else int(chorales)

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

    def score_path(self, name: str) -> Path:
        return _score_path(name)

    def program(self, name: str) -> int:
        return 0  # acoustic grand piano

    def clip_id(self, name: str) -> str:
        return f"bach/{name}"

    def cache_folder(self, sr: int | None = None) -> Path:
        """Where the mono renders of this sample rate are kept (created if missing)."""
        return cache_dir("piano", f"bach-v{RENDER_VERSION}-sr{self.sr_render}")

    def fingerprint(self) -> str:
        """Hash of the chorale list, the options, the music21 version and the render settings."""
        import music21  # deferred: importing music21 takes 308 ms; start-up does not pay for it

        h = hashlib.sha256()
        h.update(
            repr(
                ("BachChoralesPiano", RENDER_VERSION, GAIN, self.names(), self.sr_render,
                 self.seconds, music21.__version__)
            ).encode()
        )
        return f"bach_piano-{h.hexdigest()[:16]}"
