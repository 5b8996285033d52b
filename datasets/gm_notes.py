"""Single notes of many General-MIDI programs on the training soundfont (FluidR3_GM).

Monophonic music for the source-filter vocoders, whose F0 estimator learns from ``librosa.pyin``
labels: pyin labels polyphonic pieces (``gm_music``) poorly, so a twin meant to render pitched
notes trains on notes. Each program of :data:`PROGRAMS` plays ``notes`` single notes of seeded
random pitch (MIDI ``lowest``..``highest``) and velocity (70, 100 or 120), each held ``seconds`` with
``release`` seconds of its tail kept, rendered in one FluidSynth run per program with reverb and
chorus off and cached as ``.npy`` under ``cache_dir("gm_notes", ...)``. One clip per note; its
program's name is the speaker label. Only FluidR3_GM is used: the vocoder benchmark's test
soundfont (TimGM6mb) stays out.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from melforge.core.atomic import atomic_write
from melforge.core.dataset import AudioClip, AudioDataset
from melforge.core.paths import cache_dir

from .fluidsynth import GAIN, render_note_sequence

#: Bumped when rendering changes; part of the cache folder.
RENDER_VERSION = 1
#: General-MIDI programs (0-based) → name: keys, plucked and bowed strings, brass, reeds, pipes.
PROGRAMS = {
    0: "piano", 4: "rhodes", 6: "harpsichord", 11: "vibraphone", 19: "church_organ", 21: "accordion",
    24: "nylon_guitar", 25: "steel_guitar", 32: "acoustic_bass", 40: "violin", 42: "cello", 46: "harp",
    48: "string_ensemble", 56: "trumpet", 68: "oboe", 73: "flute",
}  # fmt: skip
SILENCE = 1.0  # seconds between a note's kept tail and the next note (not kept)
VELOCITIES = (70, 100, 120)  # MIDI velocities the notes are played at


class GMNotes(AudioDataset):
    """Seeded single notes of :data:`PROGRAMS` on FluidR3_GM, one clip per note.

    Args:
        programs: General-MIDI programs to play (keys of :data:`PROGRAMS`; default all).
        notes: notes per program.
        seconds: how long each note is held, seconds.
        release: tail kept after the note-off, seconds.
        lowest, highest: MIDI pitch range (default C2..C7, 36..96).
        seed: the pitches' and velocities' random seed.

    Raises:
        ValueError: an unknown program, ``notes < 1``, ``seconds <= 0``, ``release < 0`` or a
            pitch range outside 0..127.
    """

    def __init__(self, programs: Sequence[int] | None = None, notes: int = 20, seconds: float = 1.0,
                 release: float = 0.5, lowest: int = 36, highest: int = 96, seed: int = 0):
        self.programs = tuple(int(p) for p in (PROGRAMS if programs is None else programs))
        unknown = [p for p in self.programs if p not in PROGRAMS]
        if unknown:
            raise ValueError(f"gm_notes: unknown programs {unknown}; known: {sorted(PROGRAMS)}")
        if notes < 1 or seconds <= 0 or release < 0 or not 0 <= lowest <= highest <= 127:
            raise ValueError(f"gm_notes: need notes >= 1, seconds > 0, release >= 0 and 0 <= lowest <= highest <= 127, "
                             f"got {notes}, {seconds}, {release}, {lowest}, {highest}")
        self.notes, self.seconds, self.release = int(notes), float(seconds), float(release)
        self.lowest, self.highest, self.seed = int(lowest), int(highest), int(seed)

    def score(self, program: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``(notes,)`` MIDI pitches and velocities (one of :data:`VELOCITIES`) that ``program``
        plays, seeded per program."""
        rng = np.random.default_rng([self.seed, program])
        return rng.integers(self.lowest, self.highest + 1, self.notes), rng.choice(VELOCITIES, self.notes)

    def _settings(self) -> tuple:
        return (RENDER_VERSION, GAIN, self.notes, self.seconds, self.release, self.lowest, self.highest, self.seed,
                SILENCE, VELOCITIES)

    def _cache_file(self, program: int, sr: int) -> Path:
        digest = hashlib.sha256(repr((self._settings(), program)).encode()).hexdigest()[:16]
        return cache_dir("gm_notes", f"v{RENDER_VERSION}-sr{sr}") / f"{program}-{digest}.npy"

    def _render(self, program: int, sr: int) -> np.ndarray:
        """``(notes, samples)`` float32: the program's notes (one FluidSynth run per velocity),
        rendered once and then read from the cache."""
        path = self._cache_file(program, sr)
        if not path.exists():
            print(f"melforge: rendering {self.notes} notes of {PROGRAMS[program]} into {path.parent} (first use)…",
                  file=sys.stderr)
            pitches, velocities = self.score(program)
            rows = np.zeros((self.notes, int(round((self.seconds + self.release) * sr))), dtype=np.float32)
            for v in sorted(set(velocities.tolist())):
                at = np.flatnonzero(velocities == v)
                rows[at] = render_note_sequence([[int(pitches[k])] for k in at], self.seconds, program, sr, velocity=int(v),
                                                release=self.release, silence=SILENCE, effects=False)

            def write(tmp: Path, rows=rows) -> None:
                with open(tmp, "wb") as f:
                    np.save(f, rows, allow_pickle=False)

            atomic_write(path, write)
        return np.load(path, allow_pickle=False)

    def clips(self, sr: int) -> Iterator[AudioClip]:
        """Yield every note as ``(samples,)`` float32 at ``sr`` Hz, program by program; the
        speaker label is the program's name.

        Raises:
            DatasetError: FluidSynth or FluidR3_GM is missing and cannot be installed.
        """
        for program in self.programs:
            pitches, _ = self.score(program)
            for k, row in enumerate(self._render(program, sr)):
                yield AudioClip(f"gm_notes/{PROGRAMS[program]}/{k:03d}-{int(pitches[k])}", row, sr, PROGRAMS[program])

    def fingerprint(self) -> str:
        """Hash of the programs and every rendering setting."""
        return hashlib.sha256(repr((self._settings(), self.programs)).encode()).hexdigest()
