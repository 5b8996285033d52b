"""Render MIDI to audio with FluidSynth and a General-MIDI soundfont from Debian: FluidR3_GM (the
training soundfont, default) or another of :data:`SOUNDFONTS`.

``fluidsynth -ni -q -g 0.6 -r <sr> -F out.wav FluidR3_GM.sf2 in.mid``: stereo output, mixed to
mono here (``-R 0 -C 0`` added with ``effects=False``: reverb and chorus off). MIDI files are read
and written with ``mido``. Loading the soundfont costs about 0.5 s per FluidSynth run, so many
short notes are rendered in one run (:func:`render_note_sequence`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mido
import numpy as np
import soundfile as sf
from melforge.core.dataset import DatasetError

from .system_packages import ensure_debian_packages

#: The sampled General-MIDI soundfont of ``fluid-soundfont-gm``: every training set renders with it.
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
#: Debian packages providing the synthesizer and the soundfont.
PACKAGES = ("fluidsynth", "fluid-soundfont-gm")
#: General-MIDI soundfonts by name: ``(file, Debian package)``. ``timgm6mb`` (TimGM6mb, MuseScore
#: 1.3's own samples) is the held-out test soundfont of ``benchmarks/vocoders.py``: no training data
#: renders with it. ``musescore`` (MuseScore General Lite) is not held out in sound: it derives from
#: FluidR3 Mono, and its renders of the N+C notes correlate 0.98-0.9997 with FluidR3's. ``opl3``
#: (the OPL-3 FM bank of ``opl3-soundfont``) is synthesised, unlike the sampled others; ``csound``
#: (``csound-soundfont``'s sf_GMbank) shares TimGM6mb's piano, Rhodes, organ and guitar samples, so
#: no training data may use it either (``benchmarks/vocoder_sets.py``).
SOUNDFONTS = {
    "fluidr3": (SOUNDFONT, "fluid-soundfont-gm"),
    "musescore": (Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"), "musescore-general-soundfont-small"),
    "timgm6mb": (Path("/usr/share/sounds/sf2/TimGM6mb.sf2"), "timgm6mb-soundfont"),
    "csound": (Path("/usr/share/sounds/sf2/sf_GMbank.sf2"), "csound-soundfont"),
    "opl3": (Path("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2"), "opl3-soundfont"),
}
#: FluidSynth master gain (keeps dense chords below full scale).
GAIN = 0.6
#: MIDI channel reserved for drums (0-based), left untouched by :func:`set_program`.
DRUM_CHANNEL = 9
#: Tempo written into generated MIDI files, microseconds per beat (120 bpm).
TEMPO = 500_000
TICKS_PER_BEAT = 480


def soundfont_path(soundfont: str = "fluidr3") -> Path:
    """The file of General-MIDI soundfont ``soundfont`` (a key of :data:`SOUNDFONTS`).

    Raises:
        ValueError: an unknown name (names the known ones).
    """
    if soundfont not in SOUNDFONTS:
        raise ValueError(f"unknown soundfont {soundfont!r}; known: {sorted(SOUNDFONTS)}")
    return SOUNDFONTS[soundfont][0]


def ensure_fluidsynth(soundfont: str = "fluidr3") -> None:
    """Install FluidSynth and the soundfont ``soundfont`` (:data:`SOUNDFONTS`) on first use.

    Raises:
        ValueError: an unknown soundfont.
        DatasetError: they are missing and cannot be installed (gives the command to run).
    """
    path = soundfont_path(soundfont)
    ensure_debian_packages(["fluidsynth", SOUNDFONTS[soundfont][1]], needed_path=path)
    if shutil.which("fluidsynth") is None:
        ensure_debian_packages(["fluidsynth"], needed_path="/usr/bin/fluidsynth")


def set_program(midi_in: str | Path, midi_out: str | Path, program: int = 0) -> None:
    """Copy a MIDI file with every non-drum channel playing General-MIDI ``program``
    (0 = acoustic grand piano): existing program changes are rewritten, and each track that
    plays notes gets a program change at its start for each of its channels."""
    midi = mido.MidiFile(str(midi_in))
    for track in midi.tracks:
        channels = sorted(
            {m.channel for m in track if m.type == "note_on" and m.channel != DRUM_CHANNEL}
        )
        for i, msg in enumerate(track):
            if msg.type == "program_change" and msg.channel != DRUM_CHANNEL:
                track[i] = msg.copy(program=program)
        for ch in reversed(channels):
            track.insert(0, mido.Message("program_change", channel=ch, program=program, time=0))
    midi.save(str(midi_out))


def render_midi_file(midi_path: str | Path, sr: int, *, effects: bool = True, soundfont: str = "fluidr3") -> np.ndarray:
    """Render a MIDI file with FluidSynth at ``sr`` Hz.

    Args:
        midi_path: the MIDI file.
        sr: output sample rate, Hz.
        effects: False turns FluidSynth's reverb and chorus off (``-R 0 -C 0``).
        soundfont: a key of :data:`SOUNDFONTS`.

    Returns:
        ``audio: (samples,)`` float32 mono (mean of FluidSynth's two channels), unnormalised.

    Raises:
        DatasetError: FluidSynth is missing and cannot be installed, or fails on this file
            (names it and gives FluidSynth's message).
    """
    ensure_fluidsynth(soundfont)
    with tempfile.TemporaryDirectory(prefix="melforge-fluidsynth-") as tmp:
        out = Path(tmp) / "out.wav"
        cmd = [
            "fluidsynth", "-ni", "-q", "-g", str(GAIN), "-r", str(int(sr)),
            *([] if effects else ["-R", "0", "-C", "0"]),
            "-F", str(out), str(soundfont_path(soundfont)), str(midi_path),
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            raise DatasetError(
                f"fluidsynth could not render {midi_path} (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-1000:]}"
            )
        audio, file_sr = sf.read(str(out), dtype="float32", always_2d=True)  # (samples, channels)
    if file_sr != sr:
        raise DatasetError(f"fluidsynth rendered {midi_path} at {file_sr} Hz instead of {sr} Hz")
    return audio.mean(axis=1, dtype=np.float32)


def render_midi_notes(
    pitches: int | Sequence[int],
    seconds: float,
    program: int = 0,
    sr: int = 22050,
    *,
    velocity: int = 100,
    release: float = 0.5,
) -> np.ndarray:
    """Render one note or a chord of a General-MIDI instrument with FluidSynth.

    Args:
        pitches: MIDI note number(s), 0-127 (60 = C4, 69 = A4 = 440 Hz); several make a chord,
            all struck together.
        seconds: how long the notes are held (until note-off), seconds.
        program: General-MIDI program, 0-127 (0 acoustic grand, 40 violin, 73 flute, ...).
        sr: sample rate of the result, Hz.
        velocity: MIDI velocity, 1-127.
        release: time kept after note-off for the instrument's release, seconds.

    Returns:
        ``audio: (round((seconds + release) * sr),)`` float32 mono.

    Raises:
        ValueError: a pitch, program or velocity out of range, or ``seconds <= 0``.
        DatasetError: FluidSynth is missing and cannot be installed, or fails.
    """
    pitches = [int(pitches)] if np.isscalar(pitches) else [int(p) for p in pitches]
    if not pitches or any(not 0 <= p <= 127 for p in pitches):
        raise ValueError(f"pitches must be MIDI note numbers in 0..127, got {pitches}")
    if not 0 <= program <= 127 or not 1 <= velocity <= 127:
        raise ValueError(
            f"program must be in 0..127 and velocity in 1..127, got {program}, {velocity}"
        )
    if seconds <= 0 or release < 0:
        raise ValueError(f"seconds must be > 0 and release >= 0, got {seconds}, {release}")

    def ticks(s: float) -> int:
        return int(round(mido.second2tick(s, TICKS_PER_BEAT, TEMPO)))

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO, time=0))
    track.append(mido.Message("program_change", channel=0, program=int(program), time=0))
    for p in pitches:
        track.append(mido.Message("note_on", channel=0, note=p, velocity=int(velocity), time=0))
    for i, p in enumerate(pitches):
        delay = ticks(seconds) if i == 0 else 0  # all notes end together
        track.append(mido.Message("note_off", channel=0, note=p, time=delay))
    track.append(mido.MetaMessage("end_of_track", time=max(ticks(release), 1)))
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)

    n = int(round((seconds + release) * sr))
    audio = _render_midi(midi, sr)
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(audio))] = audio[:n]
    return out


def render_note_sequence(
    chords: Sequence[Sequence[int]],
    seconds: float,
    program: int = 0,
    sr: int = 22050,
    *,
    velocity: int = 100,
    release: float = 0.5,
    silence: float = 1.0,
    effects: bool = True,
    soundfont: str = "fluidr3",
) -> np.ndarray:
    """Render many notes or chords of one General-MIDI instrument in a single FluidSynth run.

    Chord ``k`` is struck at ``k · (seconds + release + silence)`` seconds and held for
    ``seconds``; the ``release`` after its note-off is kept and the ``silence`` after that lets
    the instrument's tail die away before the next chord.

    Args:
        chords: MIDI note numbers (0-127) of each chord; a one-element chord is a single note.
        seconds: how long each chord is held, seconds.
        program: General-MIDI program, 0-127.
        sr: sample rate, Hz.
        velocity: MIDI velocity, 1-127.
        release: time kept after each note-off, seconds.
        silence: time between one chord's kept release and the next chord, seconds (not kept).
        effects: False turns FluidSynth's reverb and chorus off.
        soundfont: a key of :data:`SOUNDFONTS`.

    Returns:
        ``(chords, round((seconds + release) · sr))`` float32 mono, one row per chord.

    Raises:
        ValueError: no chords, an empty chord, a pitch, program or velocity out of range, or
            ``seconds <= 0``, ``release < 0``, ``silence < 0``.
        DatasetError: FluidSynth is missing and cannot be installed, or fails.
    """
    chords = [[int(p) for p in chord] for chord in chords]
    if not chords or any(not c or any(not 0 <= p <= 127 for p in c) for c in chords):
        raise ValueError(f"chords must be non-empty lists of MIDI note numbers in 0..127, got {chords[:5]}...")
    if not 0 <= program <= 127 or not 1 <= velocity <= 127:
        raise ValueError(f"program must be in 0..127 and velocity in 1..127, got {program}, {velocity}")
    if seconds <= 0 or release < 0 or silence < 0:
        raise ValueError(f"seconds must be > 0, release and silence >= 0, got {seconds}, {release}, {silence}")

    slot = seconds + release + silence

    def tick(s: float) -> int:
        return int(round(mido.second2tick(s, TICKS_PER_BEAT, TEMPO)))

    events = []  # (absolute tick, order, message): note-offs before note-ons at equal ticks
    for k, chord in enumerate(chords):
        on, off = tick(k * slot), tick(k * slot + seconds)
        for p in chord:
            events.append((on, 1, mido.Message("note_on", channel=0, note=p, velocity=int(velocity))))
            events.append((off, 0, mido.Message("note_off", channel=0, note=p)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO, time=0))
    track.append(mido.Message("program_change", channel=0, program=int(program), time=0))
    now = 0
    for at, _, msg in events:
        track.append(msg.copy(time=at - now))
        now = at
    end = tick(len(chords) * slot - silence)
    track.append(mido.MetaMessage("end_of_track", time=max(end - now, 1)))
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)

    n = int(round((seconds + release) * sr))
    audio = _render_midi(midi, sr, effects=effects, soundfont=soundfont)  # (samples,)
    out = np.zeros((len(chords), n), dtype=np.float32)
    for k in range(len(chords)):
        start = int(round(mido.tick2second(tick(k * slot), TICKS_PER_BEAT, TEMPO) * sr))
        piece = audio[start : start + n]
        out[k, : len(piece)] = piece
    return out


def truncate_midi(midi_in: str | Path, midi_out: str | Path, seconds: float) -> None:
    """Copy a MIDI file keeping only its first ``seconds`` (by its own tempo map): later events
    are dropped and notes still sounding get a note-off at the cut, so FluidSynth renders only
    what is kept.

    Raises:
        ValueError: ``seconds <= 0``.
    """
    if seconds <= 0:
        raise ValueError(f"truncate_midi: seconds must be > 0, got {seconds}")
    midi = mido.MidiFile(str(midi_in))
    tempos = sorted(  # (absolute tick, microseconds per beat) of every tempo change
        (tick, msg.tempo)
        for track in midi.tracks
        for tick, msg in zip(_absolute_ticks(track), track)
        if msg.type == "set_tempo"
    )
    cut, now, tempo, last = None, 0.0, TEMPO_DEFAULT, 0
    for tick, value in tempos + [(None, None)]:
        span = None if tick is None else mido.tick2second(tick - last, midi.ticks_per_beat, tempo)
        if span is None or now + span >= seconds:
            cut = last + int(mido.second2tick(seconds - now, midi.ticks_per_beat, tempo))
            break
        now, last, tempo = now + span, tick, value
    for i, track in enumerate(midi.tracks):
        kept, sounding, prev = mido.MidiTrack(), set(), 0
        ticks = _absolute_ticks(track)
        end = min(cut, ticks[-1]) if ticks else 0
        for tick, msg in zip(ticks, track):
            if tick > cut or msg.type == "end_of_track":
                break
            kept.append(msg.copy(time=tick - prev))
            prev = tick
            if msg.type == "note_on" and msg.velocity > 0:
                sounding.add((msg.channel, msg.note))
            elif msg.type in ("note_off", "note_on"):
                sounding.discard((msg.channel, msg.note))
        for k, (channel, note) in enumerate(sorted(sounding)):
            kept.append(mido.Message("note_off", channel=channel, note=note, time=end - prev if k == 0 else 0))
            prev = end
        kept.append(mido.MetaMessage("end_of_track", time=max(end - prev, 0)))
        midi.tracks[i] = kept
    midi.save(str(midi_out))


#: MIDI's tempo before any set_tempo event (120 bpm), microseconds per beat.
TEMPO_DEFAULT = 500_000


def _render_midi(midi, sr: int, *, effects: bool = True, soundfont: str = "fluidr3") -> np.ndarray:
    """An in-memory ``mido.MidiFile`` rendered by :func:`render_midi_file` (through a temporary
    file): ``(samples,)`` float32 at ``sr`` Hz."""
    with tempfile.TemporaryDirectory(prefix="melforge-notes-") as tmp:
        path = Path(tmp) / "notes.mid"
        midi.save(str(path))
        return render_midi_file(path, sr, effects=effects, soundfont=soundfont)


def _absolute_ticks(track) -> list[int]:
    """Absolute tick of every message of a track."""
    out, now = [], 0
    for msg in track:
        now += msg.time
        out.append(now)
    return out
