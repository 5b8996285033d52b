"""``melforge-invert input=IN output=OUT.wav inverter=NAME``: spectrogram → waveform.

    melforge-invert input=speech.wav output=gl.wav                       # log_mel, griffin_lim
    melforge-invert input=speech.wav output=p.wav inverter=pghi inverter.refine=griffin_lim inverter.refine_iters=32
    melforge-invert input=feats.npy output=g.wav inverter=gradient representation.sr=22050

An audio input is analysed with the configured representation and inverted with
``representation.to_audio`` — a mel representation hands the inverter its mel power
(``Inverter.invert_mel``: Griffin-Lim and the gradient inverter fit the mel target directly, others
invert the NNLS magnitude, :func:`melforge.core.mel_inversion.nnls_magnitude`) — and SC / LSD
against the input's STFT magnitude and the time taken are printed. A ``.npy`` input holds features
``(frames, n_bins)`` of the configured representation. The WAV is written atomically.

Every config value and the output path (not a folder, not under a file, in a writable folder)
are checked before any work; errors are one line on stderr with exit status 2
(:func:`melforge.core.app.run_hydra_app`). While it runs, a line gives the input's duration and
a bar the inverter's iterations.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import soundfile
from melforge.core import progress
from melforge.core.app import run_hydra_app
from melforge.core.inversion import check_invert_config, invert_file


def _task(cfg: dict, output_dir: str) -> None:
    from melforge.core.inversion import (
        inversion_parts,  # torch after the OpenMP policy is set
    )

    set_threads(cfg.get("threads"))
    representation, inverter = inversion_parts(cfg)  # a trained inverter brings its own representation
    note = resample_note(cfg["input"], representation.sr)

    def log(line: str) -> None:
        print(f"melforge-invert: {line}{note}, inverter {cfg['inverter']['name']}", file=sys.stderr)

    with progress.bars(), compile_timer() as compiled:
        report = invert_file(cfg["input"], cfg["output"], representation, inverter, log=log)
    line = f"{cfg['output']}: {report['samples'] / report['sr']:.2f} s inverted in {report['seconds']:.3f} s"
    line += f" ({report['samples'] / report['sr'] / max(report['seconds'], 1e-9):.1f}x real time"
    if "analysis_seconds" in report:
        line += f"; analysis {report['analysis_seconds']:.3f} s"
    if compiled.seconds >= 0.05:
        line += (f"; a first run: {compiled.seconds:.1f} s of this command went to compiling Numba kernels, "
                 "which are cached, so later runs are faster")
    line += ")"
    if "sc_db" in report:
        line += f", SC {report['sc_db']:.2f} dB, LSD {report['lsd_db']:.2f} dB"
    print(f"{line} [{cfg['inverter']['name']}, {(inverter.representation_config() or cfg['representation'])['name']}]")


def set_threads(threads: int | None) -> None:
    """Run torch and Numba on ``threads`` CPU threads (``None``: their defaults). torch is not
    imported for it (an inverter without a network never imports torch): when it is not loaded
    yet, ``OMP_NUM_THREADS`` tells it the count when it is."""
    if threads is None:
        return
    import numba  # deferred: importing numba takes 351 ms; start-up does not pay for it

    numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))
    else:
        os.environ["OMP_NUM_THREADS"] = str(int(threads))


def resample_note(path: str, sr: int) -> str:
    """``" (resampled from 44100 Hz to 16000 Hz)"`` when the audio file at ``path`` is not at
    ``sr``; empty for a ``.npy`` features file, a file at ``sr`` or one soundfile cannot read
    (the inversion then names the problem)."""
    if path.lower().endswith(".npy"):
        return ""
    try:
        rate = int(soundfile.info(path).samplerate)
    except Exception:  # noqa: BLE001 - reported by the inversion itself
        return ""
    return f" (resampled from {rate} Hz to the representation's {sr} Hz)" if rate != sr else ""


class _CompileTime:
    """Seconds Numba spent compiling inside a :func:`compile_timer` block."""

    seconds: float = 0.0


@contextlib.contextmanager
def compile_timer() -> Iterator[_CompileTime]:
    """Measure the time Numba spends compiling kernels (its ``numba:compile`` events) in the
    block: the first run on a machine compiles and caches them, which makes it look slow."""
    from numba.core import (
        event,  # deferred: importing numba.core takes 261 ms; start-up does not pay for it
    )

    timing = _CompileTime()
    with event.install_recorder("numba:compile") as recorder:
        yield timing
        starts: list[float] = []
        for ts, ev in recorder.buffer:
            if ev.is_start:
                starts.append(ts)
            elif starts:
                start = starts.pop()
                if not starts:  # outermost compilations only (nested ones are inside them)
                    timing.seconds += ts - start


def main() -> None:
    """Console-script entry point (Hydra app; config ``melforge.configs/invert.yaml``)."""
    run_hydra_app("melforge-invert", "invert", _task, check_invert)


def check_invert(cfg: dict) -> None:
    """:func:`melforge.core.inversion.check_invert_config` and ``threads`` (null or a positive int).

    Raises:
        ValueError: names ``threads`` and its value.
    """
    threads = cfg.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads={threads!r}: expected a positive integer (or null for the libraries' default)")
    check_invert_config(cfg)


if __name__ == "__main__":
    main()
