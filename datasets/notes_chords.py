"""The N+C evaluation set of seed 002 §4.2: one-second notes and chords from C2 to C7.

Four General-MIDI sounds rendered with FluidSynth (FluidR3_GM by default, or another soundfont of
:data:`~melforge.datasets.fluidsynth.SOUNDFONTS`; reverb and chorus off): a Rhodes
piano (Electric Piano 1, program 4), a church organ (19), a string ensemble (String Ensemble 1,
48) and a nylon guitar (24). Each sound plays every single note from C2 (MIDI 36) to C7 (96)
and, on every root whose top note stays at or below C7, the six combinations of §4.2 / Fig. 4b
(intervals in semitones above the root):

========================  ==============  ===========
chord                     intervals       subset
========================  ==============  ===========
``note``                  0               ``notes``
``octave``                0, 12           ``octaves``
``major_12th``            0, 19           ``chords``
``fifth``                 0, 7            ``chords``
``open_triad``            0, 7, 16        ``chords``
``close_triad``           0, 4, 7         ``chords``
``major_seventh``         0, 4, 7, 11     ``chords``
========================  ==============  ===========

Table 1's subsets (§4.3): "Notes" holds all single notes, "Chords" all combinations "with more
than one pitch class" — so octaves, one pitch class in two octaves, are in neither; they are
kept as the subset ``octaves`` (Fig. 4b plots them).

Each chord is held one second (``NOTE_SECONDS``) and the clip keeps ``RELEASE`` seconds after
the note-off; all items of one sound are rendered in one FluidSynth run, 1 s of silence apart
(the previous tail is below −60 dB at the next onset). Renders are cached as ``.npy`` arrays
under ``cache_dir("notes_chords", ...)``.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from melforge.core.atomic import atomic_write
from melforge.core.paths import cache_dir

from .fluidsynth import GAIN, render_note_sequence, soundfont_path

#: Bumped when rendering changes; part of the cache folder.
RENDER_VERSION = 1
#: General-MIDI programs (0-based) of §4.2's four sounds.
INSTRUMENTS = {"rhodes": 4, "church_organ": 19, "string_ensemble": 48, "nylon_guitar": 24}
#: Intervals above the root (semitones) of each combination of §4.2, in Fig. 4b's order.
CHORDS = {
    "note": (0,),
    "octave": (0, 12),
    "major_12th": (0, 19),
    "fifth": (0, 7),
    "open_triad": (0, 7, 16),
    "close_triad": (0, 4, 7),
    "major_seventh": (0, 4, 7, 11),
}
LOWEST, HIGHEST = 36, 96  # C2, C7 (MIDI, C4 = 60)
NOTE_SECONDS = 1.0
RELEASE = 0.5
SILENCE = 1.0
VELOCITY = 100
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def midi_to_hz(midi: int | float) -> float:
    """Equal-tempered frequency of a MIDI note, Hz (A4 = 69 = 440 Hz)."""
    return float(440.0 * 2.0 ** ((midi - 69) / 12))


def note_name(midi: int) -> str:
    """Scientific pitch name, ``60 → "C4"``."""
    return f"{NAMES[midi % 12]}{midi // 12 - 1}"


def subset_of(intervals: Sequence[int]) -> str:
    """``"notes"`` (one pitch), ``"chords"`` (more than one pitch class) or ``"octaves"``."""
    if len(intervals) == 1:
        return "notes"
    return "chords" if len({i % 12 for i in intervals}) > 1 else "octaves"


@dataclass(frozen=True)
class NCItem:
    """One N+C clip.

    Attributes:
        id: ``"<instrument>/<chord>/<root>"``, e.g. ``"rhodes/close_triad/C3"``.
        subset: ``"notes"``, ``"chords"`` or ``"octaves"`` (module docstring).
        instrument: key of :data:`INSTRUMENTS`.
        program: General-MIDI program, 0-based.
        chord: key of :data:`CHORDS`.
        midi: MIDI note numbers sounding, low to high.
        hz: their nominal fundamentals, Hz (equal temperament, A4 = 440 Hz) — the ``f0s_hz`` of
            :func:`melforge.core.metrics.harmonic_error`.
        audio: ``(samples,)`` float32 mono at ``sr`` Hz (``NOTE_SECONDS + RELEASE`` seconds), or
            ``None`` for an item listed without audio.
        sr: sample rate of ``audio``, Hz (0 without audio).
    """

    id: str
    subset: str
    instrument: str
    program: int
    chord: str
    midi: tuple[int, ...]
    hz: tuple[float, ...]
    audio: np.ndarray | None = field(default=None, repr=False, compare=False)
    sr: int = 0

    @property
    def f0s_hz(self) -> tuple[float, ...]:
        """The nominal fundamentals, Hz (``hz``), named as ``harmonic_error``'s argument."""
        return self.hz


def nc_items(
    instruments: Sequence[str] | None = None,
    chords: Sequence[str] | None = None,
    *,
    root_step: int = 1,
    lowest: int = LOWEST,
    highest: int = HIGHEST,
) -> list[NCItem]:
    """The N+C items (without audio), ordered by instrument, chord, root.

    Args:
        instruments: keys of :data:`INSTRUMENTS` (default all four).
        chords: keys of :data:`CHORDS` (default all seven).
        root_step: take every ``root_step``-th root from ``lowest`` (1: every semitone, the full
            set; larger steps make smaller evaluation sets).
        lowest, highest: MIDI range every sounding note stays in (default C2..C7).

    Raises:
        ValueError: an unknown instrument or chord (names the known ones), ``root_step < 1`` or
            a range outside 0..127.
    """
    instruments = list(INSTRUMENTS) if instruments is None else list(instruments)
    chords = list(CHORDS) if chords is None else list(chords)
    for name in instruments:
        if name not in INSTRUMENTS:
            raise ValueError(f"notes_chords: unknown instrument {name!r}; known: {sorted(INSTRUMENTS)}")
    for name in chords:
        if name not in CHORDS:
            raise ValueError(f"notes_chords: unknown chord {name!r}; known: {list(CHORDS)}")
    if root_step < 1 or not 0 <= lowest <= highest <= 127:
        raise ValueError(f"notes_chords: need root_step >= 1 and 0 <= lowest <= highest <= 127, got {root_step}, {lowest}, {highest}")
    items = []
    for instrument in instruments:
        for chord in chords:
            intervals = CHORDS[chord]
            for root in range(lowest, highest - intervals[-1] + 1, root_step):
                midi = tuple(root + i for i in intervals)
                items.append(
                    NCItem(
                        id=f"{instrument}/{chord}/{note_name(root)}", subset=subset_of(intervals),
                        instrument=instrument, program=INSTRUMENTS[instrument], chord=chord,
                        midi=midi, hz=tuple(midi_to_hz(m) for m in midi),
                    )
                )  # fmt: skip
    return items


def _cache_path(items: Sequence[NCItem], sr: int, soundfont: str = "fluidr3") -> Path:
    """Cache file of one instrument's items at ``sr``: keyed on their ids and the settings."""
    settings = (RENDER_VERSION, GAIN, NOTE_SECONDS, RELEASE, SILENCE, VELOCITY, [i.id for i in items])
    key = repr(settings if soundfont == "fluidr3" else (*settings, soundfont))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    folder = cache_dir("notes_chords", f"v{RENDER_VERSION}-sr{sr}")
    return folder / f"{items[0].instrument}-{len(items)}-{digest}.npy"


def render_items(items: Sequence[NCItem], sr: int, soundfont: str = "fluidr3") -> list[NCItem]:
    """The items with their audio at ``sr`` Hz (rendered with FluidSynth and ``soundfont``, a key of
    :data:`~melforge.datasets.fluidsynth.SOUNDFONTS`, on first use, one run per instrument, then
    read from the cache), in the given order.

    Returns:
        copies of ``items`` with ``audio (samples,)`` float32 and ``sr`` set.

    Raises:
        ValueError: ``sr`` not positive, or an unknown soundfont.
        DatasetError: FluidSynth is missing and cannot be installed, or a render fails.
    """
    soundfont_path(soundfont)  # an unknown name fails before any work
    if sr <= 0:
        raise ValueError(f"notes_chords: sr must be positive, got {sr}")
    by_instrument: dict[str, list[NCItem]] = {}
    for item in items:
        by_instrument.setdefault(item.instrument, []).append(item)
    audio: dict[str, np.ndarray] = {}
    for instrument, group in by_instrument.items():
        path = _cache_path(group, sr, soundfont)
        if not path.exists():
            print(
                f"melforge: rendering {len(group)} N+C items of {instrument} with FluidSynth ({soundfont}) into "
                f"{path.parent} (first use)…",
                file=sys.stderr,
            )
            rendered = render_note_sequence(
                [i.midi for i in group], NOTE_SECONDS, INSTRUMENTS[instrument], sr,
                velocity=VELOCITY, release=RELEASE, silence=SILENCE, effects=False, soundfont=soundfont,
            )  # (items, samples)

            def write(tmp: Path, rendered=rendered) -> None:
                with open(tmp, "wb") as f:
                    np.save(f, rendered, allow_pickle=False)

            atomic_write(path, write)
        rows = np.load(path, allow_pickle=False)  # (items, samples)
        audio.update({i.id: rows[k] for k, i in enumerate(group)})
    return [replace(i, audio=audio[i.id], sr=int(sr)) for i in items]


def notes_chords(
    sr: int,
    instruments: Sequence[str] | None = None,
    chords: Sequence[str] | None = None,
    *,
    root_step: int = 1,
    soundfont: str = "fluidr3",
) -> list[NCItem]:
    """The N+C set with audio at ``sr`` Hz: :func:`nc_items` then :func:`render_items` with
    ``soundfont`` (``"fluidr3"``, the training soundfont, or ``"musescore"``, held out).

    Raises:
        ValueError: see :func:`nc_items`, :func:`render_items`.
        DatasetError: FluidSynth is missing and cannot be installed, or a render fails.
    """
    return render_items(nc_items(instruments, chords, root_step=root_step), sr, soundfont)


def subset(items: Sequence[NCItem], name: str) -> list[NCItem]:
    """The items of Table 1's ``"notes"`` or ``"chords"`` subset (or ``"octaves"``).

    Raises:
        ValueError: an unknown subset name.
    """
    if name not in ("notes", "chords", "octaves"):
        raise ValueError(f"notes_chords: subset must be 'notes', 'chords' or 'octaves', got {name!r}")
    return [i for i in items if i.subset == name]
