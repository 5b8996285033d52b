"""Training music for seed 002's vocoder: music21 corpus pieces on a mix of General-MIDI sounds.

Seed 002 trains on 13 hours of commercial loops (piano, guitars, harp, pads; §4.1), which cannot
be had here. This dataset stands in with the scores that ship with music21 — Bach chorales and
other Bach, Monteverdi madrigals, Palestrina masses, trecento pieces, Corelli, Haydn and Mozart
quartets, Schumann, Joplin, Irish and Scottish tunes from Ryan's Mammoth Collection and more —
each rendered with FluidSynth on one General-MIDI program: by default acoustic grand piano
(0), Rhodes / Electric Piano 1 (4), church organ (19), string ensemble (48), nylon guitar (24)
or orchestral harp (46), on FluidR3_GM. ``programs`` and ``soundfonts`` widen the mix (more
sounds, and soundfonts other than FluidR3: ``gm_music_mixed``, the data of a phase-gradient
vocoder meant to generalise across soundfonts).

Choice, deterministic and independent of ``pieces``: every collection's scores are ordered by
the SHA-256 of their corpus path, the collections are interleaved round-robin in
:data:`COLLECTIONS` order (so the first pieces span many styles), and the ``i``-th candidate plays
``programs[i % len(programs)]`` on ``soundfonts[(i // len(programs)) % len(soundfonts)]`` (so every
soundfont plays every program). Scores that music21 cannot convert to MIDI (badly formed repeats, ...) are
skipped with a warning, remembered in the cache; the rest keep their programs. With ``seconds``
set, each score's MIDI is cut a second after that before rendering. Renders are made at the
sample rate asked for (``sr_render: null``; 44.1 kHz for the paper's representation,
22,050 Hz for the CPU twin) and cached under ``cache_dir("gm_music", ...)``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import replace
from pathlib import Path

from melforge.core.dataset import DatasetError
from melforge.core.paths import cache_dir

from .fluidsynth import GAIN, SOUNDFONTS
from .piano import RenderedScores

#: Bumped when rendering or the choice of pieces changes; part of the cache folder.
RENDER_VERSION = 1
#: General-MIDI programs (0-based) by default: piano, Rhodes, church organ, strings, nylon guitar, harp.
PROGRAMS = (0, 4, 19, 48, 24, 46)
#: Short names of General-MIDI programs (0-based), the clips' speaker labels; others are ``"gm<N>"``.
PROGRAM_NAMES = {
    0: "piano", 4: "rhodes", 19: "organ", 48: "strings", 24: "nylon_guitar", 46: "harp",
    11: "vibraphone", 25: "steel_guitar", 40: "violin", 42: "cello", 71: "clarinet", 73: "flute",
}  # fmt: skip
#: music21 corpus folders, in interleaving order; ``.rntxt`` (harmonic analyses) are left out.
COLLECTIONS = (
    "bach", "monteverdi", "palestrina", "trecento", "ryansMammoth", "haydn", "mozart",
    "corelli", "schumann_robert", "joplin", "schumann_clara", "handel", "schubert", "chopin",
    "cpebach", "verdi", "weber", "beach", "beethoven", "josquin",
)  # fmt: skip
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".abc")


def corpus_root() -> Path:
    """music21's bundled corpus folder."""
    from music21 import (
        corpus,  # deferred: importing music21 takes 413 ms; start-up does not pay for it
    )

    return Path(corpus.getComposer("bach")[0]).parents[1]


@functools.lru_cache(maxsize=1)
def candidates() -> tuple[str, ...]:
    """Every usable corpus score as a path relative to :func:`corpus_root` (``"mozart/k80/movement2.mxl"``),
    in the interleaved order of the module docstring (listed once per process)."""
    from music21 import (
        corpus,  # deferred: importing music21 takes 413 ms; start-up does not pay for it
    )

    root = corpus_root()
    queues = []
    for collection in COLLECTIONS:
        rel = {p.relative_to(root).as_posix() for p in map(Path, corpus.getComposer(collection))}
        rel = [r for r in rel if Path(r).suffix in SCORE_SUFFIXES]
        queues.append(sorted(rel, key=lambda r: hashlib.sha256(r.encode()).hexdigest()))
    out = []
    for k in range(max(map(len, queues))):
        out.extend(q[k] for q in queues if k < len(q))
    return tuple(out)


class GMMusic(RenderedScores):
    """The first ``pieces`` candidate scores (module docstring), each on its General-MIDI program.

    Args:
        pieces: how many scores (of about 2,500 candidates; failures are skipped, so a few
            fewer clips may come out); ``None`` for all.
        seconds: keep only the first ``seconds`` of each piece; ``None`` keeps all.
        sr_render: FluidSynth's sample rate, Hz; ``None`` renders at the rate :meth:`clips` is
            asked for.
        transpositions: semitones; the ``i``-th candidate is transposed by
            ``transpositions[i % len(transpositions)]`` before rendering (pitch-shift augmentation,
            which seed 002 §6 names as a direction: the corpus is mostly vocal music, and an octave
            down brings its bass lines to C1-C3). ``(0,)`` (default) plays every score as written.
        programs: General-MIDI programs (0-based, 0-127) the candidates cycle through
            (default :data:`PROGRAMS`).
        soundfonts: keys of :data:`melforge.datasets.fluidsynth.SOUNDFONTS`; the ``i``-th
            candidate renders with ``soundfonts[(i // len(programs)) % len(soundfonts)]``
            (default ``("fluidr3",)``).

    Clip ids are ``"gm/<corpus path without suffix>@<program name>"`` (e.g.
    ``"gm/mozart/k80/movement2@strings"``, with ``"~-12"`` before the ``@`` when transposed by −12
    semitones, and ``"+opl3"`` when rendered with a soundfont other than FluidR3); the speaker
    label is the program name (:data:`PROGRAM_NAMES`), so splits and conditioning can see the sound.

    Raises:
        ValueError: ``pieces < 1``, ``seconds <= 0``, a non-positive ``sr_render``, or
            ``transpositions`` empty or outside ±36 semitones, ``programs`` empty or outside
            0-127, or ``soundfonts`` empty or naming an unknown soundfont.
    """

    def __init__(self, pieces: int | None = 24, seconds: float | None = 60.0, sr_render: int | None = None,
                 transpositions=(0,), programs=PROGRAMS, soundfonts=("fluidr3",)):
        if pieces is not None and pieces < 1:
            raise ValueError(f"gm_music: pieces must be >= 1 or None, got {pieces}")
        shifts = tuple(int(t) for t in transpositions)
        if not shifts or any(abs(t) > 36 for t in shifts):
            raise ValueError(f"gm_music: transpositions must be a non-empty list of semitones within ±36, got {list(transpositions)}")
        programs, soundfonts = tuple(int(p) for p in programs), tuple(str(f) for f in soundfonts)
        if not programs or any(not 0 <= p <= 127 for p in programs):
            raise ValueError(f"gm_music: programs must be a non-empty list of General-MIDI programs 0-127, got {list(programs)}")
        if not soundfonts or any(f not in SOUNDFONTS for f in soundfonts):
            raise ValueError(f"gm_music: soundfonts must be a non-empty list of {sorted(SOUNDFONTS)}, got {list(soundfonts)}")
        super().__init__(sr_render, seconds, skip_failures=True)
        self.pieces = None if pieces is None else int(pieces)
        self.transpositions = shifts
        self.programs, self.soundfonts = programs, soundfonts
        self._programs: dict[str, int] | None = None
        self._soundfonts: dict[str, str] | None = None
        self._shifts: dict[str, int] | None = None

    def _candidates(self) -> dict[str, int]:
        if self._programs is None:
            self._programs = {name: self.programs[i % len(self.programs)] for i, name in enumerate(candidates())}
        return self._programs

    def soundfont(self, name: str) -> str:
        """The soundfont that renders score ``name`` (see ``soundfonts``)."""
        if self._soundfonts is None:
            n = len(self.programs)
            self._soundfonts = {m: self.soundfonts[(i // n) % len(self.soundfonts)] for i, m in enumerate(candidates())}
        return self._soundfonts[name]

    def _soundfont_tag(self, name: str) -> str:
        soundfont = self.soundfont(name)
        return "" if soundfont == "fluidr3" else f"+{soundfont}"

    def transposition(self, name: str) -> int:
        """Semitones score ``name`` is transposed by (see ``transpositions``)."""
        if self._shifts is None:
            self._shifts = {n: self.transpositions[i % len(self.transpositions)] for i, n in enumerate(candidates())}
        return self._shifts[name]

    def _shift_tag(self, name: str) -> str:
        shift = self.transposition(name)
        return f"~{shift:+d}" if shift else ""

    def names(self) -> list[str]:
        """Corpus paths of the pieces used, in clip order.

        Raises:
            DatasetError: fewer candidate scores than asked for.
        """
        names = list(self._candidates())
        if self.pieces is not None and self.pieces > len(names):
            raise DatasetError(f"gm_music: asked for {self.pieces} pieces but music21's corpus holds {len(names)} scores")
        return names if self.pieces is None else names[: self.pieces]

    def score_path(self, name: str) -> Path:
        return corpus_root() / name

    def program(self, name: str) -> int:
        return self._candidates()[name]

    def clip_id(self, name: str) -> str:
        program = self.program(name)
        label = PROGRAM_NAMES.get(program, f"gm{program}")
        return f"gm/{Path(name).with_suffix('').as_posix()}{self._shift_tag(name)}{self._soundfont_tag(name)}@{label}"

    def cache_folder(self, sr: int) -> Path:
        return cache_dir("gm_music", f"v{RENDER_VERSION}-sr{sr}")

    def render_seconds(self) -> float | None:
        """``seconds`` plus a second for the last notes' release: longer pieces (some run 8 min)
        are cut before FluidSynth renders them."""
        return None if self.seconds is None else self.seconds + 1.0

    def cache_file(self, name: str, sr: int) -> Path:
        flat = Path(name).with_suffix("").as_posix().replace("/", "__")
        cut = "" if self.seconds is None else f".s{self.seconds:g}"
        sf = self._soundfont_tag(name).replace("+", ".")
        return self.cache_folder(sr) / f"{flat}{self._shift_tag(name)}.p{self.program(name)}{sf}{cut}.wav"

    def clips(self, sr: int):
        """Yield each piece as ``(samples,)`` float32 mono at ``sr`` Hz with its program name as
        the speaker label (see :meth:`RenderedScores.clips`)."""
        for clip in super().clips(sr):
            yield replace(clip, speaker=clip.id.rsplit("@", 1)[1])

    def fingerprint(self) -> str:
        """Hash of the piece list with programs (and soundfonts other than FluidR3), the options, the
        music21 version and the render settings."""
        import music21  # deferred: importing music21 takes 413 ms; start-up does not pay for it

        names = self.names()
        h = hashlib.sha256()
        h.update(
            repr(
                ("GMMusic", RENDER_VERSION, GAIN, [(n, self.program(n), *([t] if (t := self.transposition(n)) else []),
                                                    *([f] if (f := self.soundfont(n)) != "fluidr3" else []))
                                                   for n in names], self.sr_render,
                 self.seconds, music21.__version__)
            ).encode()
        )  # fmt: skip
        return f"gm_music-{h.hexdigest()[:16]}"
