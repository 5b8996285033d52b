"""Inverting a file with a representation and an inverter: what ``melforge-invert`` runs, as a
library (the app in :mod:`melforge.core.cli.invert` only parses the config and prints).

An audio input is analysed with the representation and inverted with
``representation.to_audio`` (a mel representation hands the inverter its mel power,
``Inverter.invert_mel``); SC / LSD against the input's STFT magnitude and the time taken are
reported. A ``.npy`` input holds features ``(frames, n_bins)`` of the representation. The WAV is
written atomically.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import metrics
from .audio_io import read_audio as load_audio
from .audio_io import write_wav
from .plugins import registries
from .validation import check_audio


def inversion_parts(cfg: dict, regs=None) -> tuple:
    """The representation and inverter ``melforge-invert`` uses: ``cfg``'s inverter, and the
    representation it declares (:meth:`melforge.core.inverter.Inverter.representation_config`,
    a trained inverter's analysis from its checkpoint) or else ``cfg``'s ``representation``.

    Raises:
        EntryConfigError, UnknownEntryError: a bad ``representation`` or ``inverter`` group.
        ValueError: the inverter does not take what the representation gives (names both).
    """
    # deferred, as in every app: torch loads only after run_hydra_app set OMP_WAIT_POLICY
    from .experiment import build_audio_parts
    regs = regs or registries()
    representation, inverter = build_audio_parts(cfg, regs)
    own = inverter.representation_config()
    if own is not None:
        representation = regs.representation.build(own)
    problem = inverter.accepts((own or cfg["representation"])["name"], representation)
    if problem:
        raise ValueError(f"inverter={cfg['inverter'].get('name')}: {problem}")
    return representation, inverter


def invert_features(representation, inverter, features: np.ndarray, *, length: int | None = None) -> np.ndarray:
    """Waveform ``(samples,)`` float32 from features ``(frames, n_bins)`` of ``representation``:
    ``representation.to_audio(features, inverter)`` (a mel representation hands the inverter its
    mel power, ``Inverter.invert_mel``).

    Raises:
        ValueError: features of the wrong shape or not finite; see the inverter.
    """
    return representation.to_audio(np.asarray(features), inverter, length=length)


def invert_file(
    input_path: str | Path, output_path: str | Path, representation, inverter, *, log: Callable[[str], None] | None = None
) -> dict:
    """Invert an audio file or a ``.npy`` feature file into the WAV ``output_path``.

    Args:
        log: called with one line (the input's duration and frames) before the inversion starts.

    Returns:
        ``{"seconds": wall time of the inversion, "samples": n, "sr": Hz}`` plus, for audio
        input, ``"analysis_seconds"`` and ``"sc_db"`` / ``"lsd_db"`` against the input's STFT
        magnitude.

    Raises:
        FileNotFoundError, ValueError: unreadable input, bad shapes or values (nothing is written).
    """
    input_path = Path(input_path)
    sr = representation.sr
    report: dict = {"sr": sr}

    def announce(frames: int, samples: int) -> None:
        if log is not None:
            log(f"{input_path} → {output_path}: {samples / sr:.2f} s of audio, {frames} frames")

    if input_path.suffix.lower() == ".npy":
        if not input_path.is_file():
            raise FileNotFoundError(f"input: no such file {str(input_path)!r}")
        features = np.load(input_path, allow_pickle=False)
        if features.ndim >= 1:
            announce(features.shape[0], representation.samples_for(features.shape[0]))
        start = time.perf_counter()
        audio_out = invert_features(representation, inverter, features)
        report["seconds"] = time.perf_counter() - start
    else:
        audio = load_audio(input_path, sr)
        start = time.perf_counter()
        features = representation.analyze(audio)
        report["analysis_seconds"] = time.perf_counter() - start
        announce(features.shape[0], audio.shape[0])
        start = time.perf_counter()
        audio_out = invert_features(representation, inverter, features, length=audio.shape[0])
        report["seconds"] = time.perf_counter() - start
        stft = representation.metrics_stft()
        target = metrics.stft_magnitude(audio, stft)
        estimate = metrics.stft_magnitude(audio_out, stft)
        report["sc_db"] = metrics.spectral_convergence_db(target, estimate)
        report["lsd_db"] = metrics.log_spectral_distance(target, estimate)
    write_wav(output_path, check_audio(audio_out, "output audio"), sr, subtype="FLOAT")
    report["samples"] = int(audio_out.shape[0])
    return report


def check_output_path(output: str | os.PathLike) -> None:
    """Check, before any work, that the WAV ``output`` can be written: not a folder, no file
    where a folder of its path should be, and a writable folder to write (or create) it in.

    Raises:
        ValueError: names ``output``, its value and what is wrong.
    """
    path = Path(output)
    where = f"output={str(output)!r}"
    if path.is_dir():
        raise ValueError(f"{where}: is a folder; expected the path of a .wav file to write")
    existing = next(a for a in (path.parent, *path.parent.parents) if a.exists() or a == Path(a.anchor or "."))
    if not existing.is_dir():
        raise ValueError(f"{where}: {existing} is a file, not a folder, so nothing can be written under it")
    if existing == path.parent:
        try:  # a real probe: permissions, read-only file systems, quotas
            with tempfile.TemporaryFile(dir=existing):
                pass
        except OSError as exc:
            raise ValueError(f"{where}: cannot write into the folder {existing} ({exc.strerror or exc})") from None
    elif not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{where}: cannot create {path.parent}: the folder {existing} is not writable")


def check_invert_config(cfg: dict) -> None:
    """Every value of a ``melforge-invert`` config: the representation and inverter against
    their registered factories, ``input`` given, and the ``output`` path (:func:`check_output_path`).

    Raises:
        ValueError, EntryConfigError, UnknownEntryError: names the key.
    """
    from .plugins import (
        registries,  # deferred: torch loads only after run_hydra_app set OMP_WAIT_POLICY
    )

    regs = registries()
    regs.representation.check_config(cfg["representation"], where="representation")
    regs.inverter.check_config(cfg["inverter"], where="inverter")
    for key in ("input", "output"):
        if not isinstance(cfg.get(key), str) or not cfg[key]:
            raise ValueError(f"{key}={cfg.get(key)!r}: expected a file path")
    check_output_path(cfg["output"])
