"""The rows of the vocoder benchmark (``benchmarks/vocoders.py``): every inverter of the registry,
classical and learned, and the two librosa baselines, each as ``invert(mel_power, length)``.

Classical rows are built from their config group's defaults through the registry and run through
``Representation.to_audio``'s own call (``Inverter.invert_mel``), as ``melforge-invert`` does.
Learned rows take a checkpoint (``NAME:PATH`` on the command line); a checkpoint whose mel
geometry differs from the domain's is refused by the inverter's own geometry check, and the row
is left out of that domain with the message.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import librosa
import numpy as np
import torch
import yaml

from melforge.core.config_options import config_dirs
from melforge.core.inversion import inversion_parts

#: Inverters that take a checkpoint (the trainable ones of the registry).
LEARNED = ("hifigan", "istftnet", "melgan", "ddsp", "nsf", "nsf_hifigan", "pg_vocoder")
#: Inverters whose generator inverts a whole batch of mels in one call (``invert_mel_batch``).
BATCHED = ("hifigan", "istftnet", "melgan")


@dataclass
class Row:
    """One row: a label that says exactly what runs, and its inversion.

    Attributes:
        label: what the row is (a baseline's label follows its paper's definition).
        invert: ``(mel_power: (frames, n_mels) float64, length: samples) -> (length,) float32``.
        parameters: trained parameters (0 for a classical inverter).
        train_minutes: wall time of the twin's training up to the checkpoint used (None: none).
        name: the registry name (``librosa`` for the baselines).
        inverter: the built inverter (None for the baselines).
    """

    label: str
    invert: Callable[[np.ndarray, int], np.ndarray]
    parameters: int = 0
    train_minutes: float | None = None
    name: str = ""
    inverter: object = field(default=None, repr=False)


def librosa_rows(representation, iterations=(32, 100, 500)) -> list[Row]:
    """``librosa.feature.inverse.mel_to_audio`` with ``n`` iterations for each ``n``, called as its
    two steps so that the random initial phase is seeded: librosa's NNLS mel → STFT magnitude
    (``mel_to_stft``), then its Griffin-Lim with momentum 0.99 (``griffinlim``, Perraudin et al.
    2013's fast Griffin-Lim) from a random phase of seed 0. With 500 iterations this is seed 002's ``griffin-lim``
    baseline (§4.3: the mel's frequency axis and values warped to a magnitude, then [17]'s fast
    Griffin-Lim for 500 iterations)."""
    stft, mel = representation.stft, representation

    def run(n_iter: int):
        def invert(mel_power: np.ndarray, length: int) -> np.ndarray:
            magnitude = librosa.feature.inverse.mel_to_stft(
                np.asarray(mel_power, dtype=np.float32).T, sr=stft.sr, n_fft=stft.n_fft, power=2.0, fmin=mel.fmin,
                fmax=mel.fmax)  # (bins, frames): librosa's NNLS
            audio = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=stft.hop_length, win_length=stft.win_length,
                                       n_fft=stft.n_fft, length=length, momentum=0.99, random_state=0)
            return audio.astype(np.float32)
        return invert

    rows = []
    for n in iterations:
        what = ("fast Griffin-Lim 500 (momentum 0.99) on the warped mel: seed 002's griffin-lim baseline, "
                "as librosa mel_to_audio") if n == 500 else f"librosa mel_to_audio, GL-{n} (momentum 0.99)"
        rows.append(Row(what, run(n), name="librosa"))
    return rows


CLASSICAL = (
    ("griffin_lim", "griffin_lim: melforge's fast GL (momentum 0.99), 32 iterations on the mel target"),
    ("pghi", "pghi: PGHI on the NNLS magnitude"),
    ("gradient", "gradient: PGHI → fast GL 50 → L-BFGS 50 on the mel"),
)


def registry_inverter(name: str, representation_cfg: dict, **overrides):
    """The inverter ``name`` built from its config group's defaults plus ``overrides``, and the
    representation it runs with (``melforge.core.inversion.inversion_parts``).

    Raises:
        ValueError: the inverter refuses the representation (another mel geometry, names both).
    """
    defaults = yaml.safe_load((config_dirs()[0] / "inverter" / f"{name}.yaml").read_text())
    return inversion_parts({"representation": representation_cfg, "inverter": {**defaults, **overrides}})


def _via(representation, inverter) -> Callable[[np.ndarray, int], np.ndarray]:
    basis, stft = representation.mel_basis, representation.stft
    return lambda mel_power, length: inverter.invert_mel(mel_power, basis, stft, length=length)


def classical_rows(representation_cfg: dict) -> list[Row]:
    """melforge's classical inverters at their config defaults."""
    rows = []
    for name, label in CLASSICAL:
        representation, inverter = registry_inverter(name, representation_cfg)
        rows.append(Row(label, _via(representation, inverter), name=name, inverter=inverter))
    return rows


def train_minutes(checkpoint: Path) -> float | None:
    """Minutes from the run's first training step (``step 0:`` in ``train.log``, after data
    preparation and labelling) to the line that wrote ``checkpoint``'s step; None when the log is
    missing."""
    log = checkpoint.parent.parent / "train.log"
    if not log.exists():
        return None
    step = int(torch.load(checkpoint, map_location="cpu", weights_only=True)["step"])
    stamp = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+\]")
    start = end = None
    for line in log.read_text().splitlines():
        m = stamp.match(line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
        if start is None and " step 0:" in line:
            start = t
        if f"step {step}: wrote checkpoint" in line or f"step {step}: valid" in line:
            end = t
    return None if start is None or end is None else (end - start).total_seconds() / 60


def learned_row(spec: str, representation_cfg: dict, **overrides) -> Row:
    """The row of ``spec`` = ``NAME:CHECKPOINT`` (NAME one of :data:`LEARNED`).

    Raises:
        ValueError: a bad spec, or a checkpoint of another mel geometry than the domain's.
    """
    name, _, path = spec.partition(":")
    if name not in LEARNED or not path:
        raise ValueError(f"--vocoder takes NAME:CHECKPOINT with NAME one of {LEARNED}, got {spec!r}")
    representation, inverter = registry_inverter(name, representation_cfg, checkpoint=path, **overrides)
    for key, value in representation_cfg.items():
        if key in ("sr", "n_mels", "hop_length", "n_fft") and representation.config().get(key) != value:
            raise ValueError(f"{spec}: its {key} is {representation.config().get(key)}, the domain's is {value}")
    run = f"{Path(path).parent.parent.name}, {Path(path).stem}"  # run folder and checkpoint: rows never share a label
    extra = "".join(f", {k}={v}" for k, v in overrides.items())
    return Row(f"{name} ({run}{extra})", _via(representation, inverter), _parameters(path),
               train_minutes(Path(path)), name, inverter)


def _parameters(checkpoint: str) -> int:
    """Parameters of the inference network in a checkpoint: the ``model`` state's tensors, less the
    GAN discriminators' (``discriminator.*``) that inference does not run; a source-filter
    vocoder's count includes its F0 estimator."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    return int(sum(t.numel() for k, t in state.items() if torch.is_tensor(t) and not k.startswith("discriminator")))


def time_batched(invert_mel_batch: Callable, mels: np.ndarray, repeats: int) -> tuple[float, float]:
    """``(single, together)`` seconds: ``mels (clips, frames, n_mels)`` inverted by one call per
    clip against one call on all. Both shapes run once before timing (oneDNN builds its kernels on
    a shape's first call), then each is timed ``repeats`` times, alternating; the fastest of each."""
    calls = {"single": lambda: [invert_mel_batch(mels[k:k + 1]) for k in range(len(mels))],
             "together": lambda: invert_mel_batch(mels)}
    best = {key: float("inf") for key in calls}
    for call in calls.values():
        call()  # warm-up of the shape
    for _ in range(repeats):
        for key, call in calls.items():
            start = time.perf_counter()
            call()
            best[key] = min(best[key], time.perf_counter() - start)
    return best["single"], best["together"]
