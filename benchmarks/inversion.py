"""Inversion benchmark: melforge's inverters against librosa on real audio (issue 4).

    .venv/bin/python benchmarks/inversion.py [--repeats 5] [--seconds 5] [--out results.md]

Clips (22050 Hz, STFT n_fft 1024, hop 256, Hann): speech from the Asterisk prompts, a Bach
chorale on piano, single notes and chords rendered with FluidSynth (``melforge.datasets.piano``;
rows are left out, with a note, where that module is missing). For every method: wall time
(median of ``--repeats`` runs after one warm-up), real-time factor (audio seconds per second),
SC (dB), LSD (dB) against the clip's true STFT magnitude, and H_err (semitones, mean / max over
notes) on notes and chords. Magnitude-domain methods get ``|STFT|``; mel-domain methods an
80-band mel power spectrogram. Numba compile time (cold cache) and cache-load time (second
process) are measured in fresh subprocesses and reported separately.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import librosa
import numpy as np

from melforge.core import metrics
from melforge.core.stft import StftParams

SR = 22050
STFT = StftParams(sr=SR, n_fft=1024, hop_length=256, win_length=1024)
N_MELS = 80
MOMENTUM = 0.99

#: (label, MIDI pitches, GM program); programs: 0 grand piano, 24 nylon guitar, 40 violin,
#: 48 string ensemble, 73 flute.
PIANO_NOTES = [
    ("C2", [36], 0),
    ("G2", [43], 0),
    ("C4", [60], 0),
    ("E4", [64], 0),
    ("C6", [84], 0),
    ("G6", [91], 0),
]
OTHER_NOTES = [
    ("guitar E2", [40], 24),
    ("violin A3", [57], 40),
    ("flute G5", [79], 73),
]
CHORDS = [
    ("piano octave C4", [60, 72], 0),
    ("piano fifth G3-D4", [55, 62], 0),
    ("piano triad C3", [48, 52, 55], 0),
    ("piano maj7 C4", [60, 64, 67, 71], 0),
    ("strings triad F3", [53, 57, 60], 48),
]
NOTE_SECONDS, NOTE_RELEASE = 1.0, 0.3


@dataclass
class Clip:
    """A benchmark clip: ``audio (samples,)`` at :data:`SR` and, for notes/chords, segments
    ``(start, stop, f0s_hz)`` on which H_err is measured."""

    name: str
    audio: np.ndarray
    segments: list[tuple[int, int, list[float]]] = field(default_factory=list)


def midi_hz(pitch: int) -> float:
    """MIDI note number → fundamental frequency in Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2 ** ((pitch - 69) / 12)


def load_clips(seconds: float) -> tuple[list[Clip], list[str]]:
    """The clips available here and notes on the ones that are not."""
    from melforge.datasets.asterisk import AsteriskPrompts

    notes: list[str] = []
    speech = []
    for clip in AsteriskPrompts(languages=("en",)).clips(SR):
        speech.append(clip.audio)
        if sum(map(len, speech)) >= seconds * SR:
            break
    clips = [Clip("speech (Asterisk en)", np.concatenate(speech)[: int(seconds * SR)])]
    try:
        from melforge.datasets.piano import BachChoralesPiano, render_midi_notes
    except ImportError as exc:  # written by another developer; say so in the results
        notes.append(f"piano rows left out: melforge.datasets.piano is not importable ({exc})")
        return clips, notes
    chorale = next(iter(BachChoralesPiano(chorales=1, seconds=seconds).clips(SR)))
    clips.append(Clip(f"piano ({chorale.id})", chorale.audio[: int(seconds * SR)]))
    for name, table in (("piano-notes", PIANO_NOTES), ("other-notes", OTHER_NOTES), ("chords", CHORDS)):
        parts, segments, start = [], [], 0
        for _label, pitches, program in table:
            audio = render_midi_notes(pitches, NOTE_SECONDS, program=program, sr=SR, release=NOTE_RELEASE)
            parts.append(audio)
            segments.append((start, start + audio.size, [midi_hz(p) for p in pitches]))
            start += audio.size
        clips.append(Clip(f"{name} ({len(table)}: {', '.join(t[0] for t in table)})", np.concatenate(parts), segments))
    return clips, notes


def magnitude_methods() -> list[tuple[str, object]]:
    """``(label, f(magnitude, length) -> audio)`` for the magnitude-domain methods; "a → b" is
    ``b`` composed on ``a`` by constructor (``GriffinLim(initializer=PGHI())``), "(gradient
    defaults)" the ``gradient`` config's factory."""
    from melforge.inverters.factories import build_gradient
    from melforge.inverters.gradient import GradientInversion
    from melforge.inverters.griffin_lim import GriffinLim
    from melforge.inverters.pghi import PGHI

    def ours(inverter):
        return lambda mag, n: inverter.invert(mag, STFT, length=n)

    def librosa_gl(n_iter):
        return lambda mag, n: librosa.griffinlim(
            mag.T, n_iter=n_iter, hop_length=STFT.hop_length, n_fft=STFT.n_fft, momentum=MOMENTUM,
            random_state=0, length=n,
        )

    methods = []
    for n_iter in (32, 100):
        methods.append((f"librosa.griffinlim {n_iter} (α 0.99)", librosa_gl(n_iter)))
        methods.append((f"griffin_lim {n_iter} (α 0.99)", ours(GriffinLim(n_iter=n_iter, momentum=MOMENTUM))))
    methods += [
        ("griffin_lim 100 (α 0, classic)", ours(GriffinLim(n_iter=100, momentum=0.0))),
        ("pghi", ours(PGHI())),
        ("pghi → griffin_lim 32", ours(GriffinLim(32, MOMENTUM, initializer=PGHI()))),
        ("pghi → griffin_lim 100", ours(GriffinLim(100, MOMENTUM, initializer=PGHI()))),
        ("pghi → gradient 100", ours(GradientInversion(PGHI(), n_iter=100))),
        ("pghi → griffin_lim 50 → gradient 50 (gradient defaults)", ours(build_gradient())),
        ("pghi → griffin_lim 100 → gradient 100", ours(GradientInversion(GriffinLim(100, MOMENTUM, initializer=PGHI()), n_iter=100))),
        ("pghi → griffin_lim 100 → gradient 200", ours(GradientInversion(GriffinLim(100, MOMENTUM, initializer=PGHI()), n_iter=200))),
        ("griffin_lim 16 → gradient 100", ours(GradientInversion(GriffinLim(16, MOMENTUM), n_iter=100))),
    ]
    return methods


def mel_methods(basis: np.ndarray) -> list[tuple[str, object]]:
    """``(label, f(mel_power, length) -> audio)`` for the 80-band mel methods (``Inverter.invert_mel``)."""
    from melforge.core.mel_inversion import mel_to_linear
    from melforge.inverters.factories import build_gradient
    from melforge.inverters.griffin_lim import GriffinLim
    from melforge.inverters.pghi import PGHI

    def ours(inverter):
        return lambda mel, n: inverter.invert_mel(mel, basis, STFT, length=n)

    return [
        (
            "librosa mel_to_audio (NNLS + GL 32)",
            lambda mel, n: librosa.feature.inverse.mel_to_audio(
                mel.T, sr=SR, n_fft=STFT.n_fft, hop_length=STFT.hop_length, length=n
            ),
        ),
        ("mel→linear + griffin_lim 32, fixed magnitude (as librosa)", lambda mel, n: GriffinLim(n_iter=32).invert(
            mel_to_linear(mel, basis), STFT, length=n)),
        ("griffin_lim 32 with mel update", ours(GriffinLim(n_iter=32))),
        ("pghi → griffin_lim 32 with mel update", ours(GriffinLim(32, MOMENTUM, initializer=PGHI()))),
        ("pghi → griffin_lim 100 with mel update", ours(GriffinLim(100, MOMENTUM, initializer=PGHI()))),
        ("pghi (on mel→linear)", ours(PGHI())),
        ("pghi → griffin_lim 50 → gradient on mel 20", ours(build_gradient(n_iter=20))),
        ("pghi → griffin_lim 50 → gradient on mel 50 (gradient defaults)", ours(build_gradient())),
    ]


def timed(f, repeats: int) -> tuple[float, np.ndarray]:
    """Median wall time (s) of ``repeats`` calls of ``f()`` after one warm-up, and its result."""
    out = f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def score(clip: Clip, magnitude: np.ndarray, audio: np.ndarray) -> dict:
    """SC (dB), LSD (dB) and, for clips with segments, H_err mean/max (semitones)."""
    est = metrics.stft_magnitude(np.asarray(audio, dtype=np.float32), STFT)
    row = {
        "sc": metrics.spectral_convergence_db(magnitude, est),
        "lsd": metrics.log_spectral_distance(magnitude, est),
    }
    if clip.segments:
        errs = [
            metrics.harmonic_error(clip.audio[a:b], np.asarray(audio)[a:b], SR, f0s) for a, b, f0s in clip.segments
        ]
        row["herr_mean"] = float(np.mean([e.mean for e in errs]))
        row["herr_max"] = float(np.max([e.max for e in errs]))
    return row


COMPILE_SNIPPET = """
import time
t0 = time.perf_counter()
import numpy as np
from melforge.core.mel_inversion import mel_to_linear
from melforge.core.stft import StftParams
from melforge.inverters.factories import build_gradient, build_pghi
t1 = time.perf_counter()
p = StftParams(22050, 1024, 256, 1024)
mag = np.abs(np.random.default_rng(0).standard_normal((20, 513)))
build_pghi(refine="griffin_lim", refine_iters=2).invert(mag, p)
build_gradient(n_iter=2, init="griffin_lim", init_iters=2).invert(mag, p)
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def compile_times() -> dict:
    """Import time and first-call time (s) of all Numba kernels, with an empty Numba cache
    (compilation) and again in a second process (loading the cache)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="melforge-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold cache (compile)", "warm cache (second process)"):
            res = subprocess.run([sys.executable, "-c", COMPILE_SNIPPET], env=env, capture_output=True, text=True, check=True)
            imp, first = map(float, res.stdout.split())
            out[label] = (imp, first)
    return out


def fmt(row: dict, key: str, spec: str = ".2f") -> str:
    return format(row[key], spec) if key in row else "–"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (median), after a warm-up")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the speech and piano clips")
    parser.add_argument(
        "--clips", default="all", help="comma-separated clip kinds to run: speech,piano,piano-notes,other-notes,chords"
    )
    parser.add_argument("--out", default=None, help="also write the markdown tables to this file")
    args = parser.parse_args(argv)

    lines = []

    def emit(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    emit(f"Machine: {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}; "
         f"librosa {librosa.__version__}, numpy {np.__version__}.")
    comp = compile_times()
    emit()
    emit("| Numba kernels (all inverters) | import (s) | first call (s) |")
    emit("| --- | ---: | ---: |")
    for label, (imp, first) in comp.items():
        emit(f"| {label} | {imp:.2f} | {first:.2f} |")

    clips, notes = load_clips(args.seconds)
    if args.clips != "all":
        wanted = set(args.clips.split(","))
        clips = [c for c in clips if c.name.split(" ")[0] in wanted]
    for note in notes:
        emit(f"\nNote: {note}")
    basis = librosa.filters.mel(sr=SR, n_fft=STFT.n_fft, n_mels=N_MELS)
    for clip in clips:
        seconds = clip.audio.size / SR
        magnitude = metrics.stft_magnitude(clip.audio, STFT)
        mel = (magnitude**2) @ basis.T  # (frames, n_mels) mel power
        emit(f"\n#### {clip.name}, {seconds:.1f} s")
        emit()
        emit("| input | method | time (s) | × real time | SC (dB) | LSD (dB) | H_err mean | H_err max |")
        emit("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for domain, methods, target in (
            ("magnitude", magnitude_methods(), magnitude),
            (f"mel {N_MELS}", mel_methods(basis), mel),
        ):
            for label, f in methods:
                wall, audio = timed(lambda: f(target, clip.audio.size), args.repeats)
                row = score(clip, magnitude, audio)
                emit(
                    f"| {domain} | {label} | {wall:.3f} | {seconds / wall:.1f} | {fmt(row, 'sc')} | {fmt(row, 'lsd')} "
                    f"| {fmt(row, 'herr_mean', '.3f')} | {fmt(row, 'herr_max', '.2f')} |"
                )
    emit(f"\nLoad average at end: {os.getloadavg()[0]:.2f}.")
    if args.out:
        from melforge.core.atomic import atomic_write

        atomic_write(args.out, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
