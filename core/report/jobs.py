"""Reading the jobs of a run or sweep directory for ``melforge-report``: what is read from each
run directory, and how a failed or unfinished one is told apart, is in :mod:`melforge.core.report`."""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

from ..run_dir import LOCK, flatten

#: Files the report writes into the directory it reads.
OUTPUTS = ("report.md", "report.csv", "curves.png", "samples.png", "report.html")


#: A directory holding any of these is a run (a sweep job); ``metrics.json`` or ``checkpoints/``
#: make the report's directory itself one run.
RUN_MARKERS = ("metrics.json", "checkpoints", "config.yaml", LOCK, ".hydra/overrides.yaml")


SAMPLE = "samples/sample_000"

DONE, RUNNING, FAILED = "done", "running", "failed"


class NoRunsFound(ValueError):
    """The directory is neither a run directory nor a sweep holding any."""


@dataclass
class Curve:
    """One TensorBoard scalar: ``steps`` and ``values`` (the last value written at each step)."""

    steps: list[int]
    values: list[float]

    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    def best(self) -> tuple[float, int] | tuple[None, None]:
        """The lowest finite value and its step."""
        finite = [(v, s) for s, v in zip(self.steps, self.values) if math.isfinite(v)]
        return min(finite) if finite else (None, None)


@dataclass
class Job:
    """What the report knows about one run directory (``None``: not known)."""

    name: str  # the directory, relative to the report's directory ("." for a single run)
    path: Path
    status: str = FAILED
    reason: str = ""  # why it failed / where it stands
    overrides: list[str] = field(default_factory=list)  # every override of the job
    label: str = ""  # the overrides that tell it from the other jobs
    config: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, Curve] = field(default_factory=dict)
    tiers: int = 1
    monitor: str = "nll"  # the learner's monitored figure: a model's NLL, a vocoder's loss (metrics.json "monitor")
    monitor_label: str = "NLL"
    units: str = "nats per element"
    valid: float | None = None  # the monitored figure on the validation set, at the end
    best_valid: float | None = None
    best_valid_step: int | None = None
    tier_valid: dict[int, float | None] = field(default_factory=dict)
    tier_best_valid: dict[int, float | None] = field(default_factory=dict)
    train: float | None = None
    steps: int | None = None
    wall_seconds: float | None = None
    parameters: int | None = None
    sample_seconds: float | None = None
    sample_elements_per_second: float | None = None
    sample_npy: Path | None = None
    sample_wav: Path | None = None
    sample_png: Path | None = None
    sample_kind: str = ""  # the representation's name, or "waveform" (a log-mel of the WAV is shown)
    sample_image: np.ndarray | None = None  # (frames, bins) shown in samples.png and report.html
    notes: list[str] = field(default_factory=list)  # what could not be read, and why


def _is_run(path: Path) -> bool:
    return path.is_dir() and any((path / m).exists() for m in RUN_MARKERS)


def find_jobs(root: str | os.PathLike) -> list[Path]:
    """The run directories under ``root``: ``root`` itself when it holds ``metrics.json`` or
    ``checkpoints/``, else every subdirectory that looks like a run (sweep jobs, in job order).

    Raises:
        NoRunsFound: none (names the directory and what a run directory holds).
    """
    root = Path(root)
    if not root.is_dir():
        raise NoRunsFound(f"{root} is not a directory")
    if (root / "metrics.json").exists() or (root / "checkpoints").is_dir():
        return [root]
    jobs = [p for p in root.iterdir() if not p.name.startswith(".") and _is_run(p)]
    if not jobs and _is_run(root):
        return [root]
    if not jobs:
        raise NoRunsFound(
            f"{root} holds no melforge run: neither metrics.json nor checkpoints/ in it, and no subdirectory "
            "with metrics.json, checkpoints/ or config.yaml (give a run directory or a melforge-train -m sweep directory)"
        )

    def order(p: Path) -> tuple:
        m = re.match(r"(\d+)(?:_|$)", p.name)
        return (0, int(m.group(1)), p.name) if m else (1, 0, p.name)

    return sorted(jobs, key=order)


def lock_is_held(run_dir: Path) -> bool:
    """Whether a live process holds ``run_dir/.melforge.lock`` (a training in progress).

    The check takes the lock for an instant when it is free (``LOCK_EX | LOCK_NB``) and lets it
    go at once; a missing lock file means no holder.
    """
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when absent or not a number (NaN stays NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def read_curves(tb_dir: Path) -> dict[str, Curve]:
    """Every scalar in ``tb_dir``'s event files (``{}`` when there are none or they are empty)."""
    if not tb_dir.is_dir() or not any(tb_dir.glob("events.out.tfevents.*")):
        return {}
    from tensorboard.backend.event_processing.event_accumulator import (  # deferred: importing tensorboard.backend.event_processing.event_accumulator takes 146 ms; start-up does not pay for it
        SCALARS,
        EventAccumulator,
    )

    acc = EventAccumulator(str(tb_dir), size_guidance={SCALARS: 0})
    acc.Reload()
    curves = {}
    for tag in acc.Tags().get("scalars", []):
        by_step: dict[int, float] = {}
        for event in acc.Scalars(tag):  # in file order: a resumed run's later value wins
            by_step[int(event.step)] = float(event.value)
        steps = sorted(by_step)
        curves[tag] = Curve(steps, [by_step[s] for s in steps])
    return curves


def _last_log_line(path: Path) -> str:
    """The last non-empty line of the newest ``*.log`` in ``path`` ('' when none)."""
    logs = sorted(path.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for log in logs:
        try:
            lines = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()]
        except OSError:
            continue
        if lines:
            return f"{log.name}: {lines[-1]}"
    return ""


def _count_parameters(model_state: dict) -> int:
    import torch  # deferred: torch is slow to import; start-up does not pay for it

    return int(sum(v.numel() for v in model_state.values() if isinstance(v, torch.Tensor) and v.is_floating_point()))


def read_job(path: Path, root: Path) -> Job:
    """Everything the report shows about the run directory ``path`` (never raises on what a
    failed or unfinished run lacks; see :attr:`Job.notes`)."""
    name = "." if path == root else str(path.relative_to(root))
    job = Job(name=name, path=path)

    def attempt(what: str, fn):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a damaged file is noted, never fatal
            first = str(exc).splitlines()[0] if str(exc) else ""
            job.notes.append(f"{what}: {type(exc).__name__}: {first}")
            return None

    if (path / "config.yaml").is_file():
        cfg = attempt("config.yaml", lambda: _read_yaml(path / "config.yaml"))
        job.config = cfg if isinstance(cfg, dict) else None
    overrides_file = path / ".hydra" / "overrides.yaml"
    if overrides_file.is_file():
        ov = attempt(".hydra/overrides.yaml", lambda: _read_yaml(overrides_file))
        if isinstance(ov, list):
            job.overrides = [str(o) for o in ov]
    if (path / "metrics.json").is_file():
        m = attempt("metrics.json", lambda: json.loads((path / "metrics.json").read_text()))
        job.metrics = m if isinstance(m, dict) else {}
    job.curves = attempt("tensorboard", lambda: read_curves(path / "tensorboard")) or {}

    state = None
    last = path / "checkpoints" / "last.pt"
    if last.is_file():
        from ..checkpoint import (
            load_checkpoint,  # deferred: torch is slow to import; only runs with checkpoints need it
        )

        state = attempt("checkpoints/last.pt", lambda: load_checkpoint(last))
        if state is not None and isinstance(state.get("model"), dict):
            job.parameters = _count_parameters(state["model"])

    _set_status(job, state)
    _set_figures(job, state)
    # the first sample
    for suffix in ("npy", "wav", "png"):
        p = path / f"{SAMPLE}.{suffix}"
        if p.is_file():
            setattr(job, f"sample_{suffix}", p)
    samples = job.metrics.get("samples") or []
    if samples and isinstance(samples[0], dict):
        job.sample_seconds = _finite(samples[0].get("seconds"))
    if job.sample_npy is not None:
        attempt("samples/sample_000.npy", lambda: _load_sample(job))
    return job


def _set_status(job: Job, state: dict | None) -> None:
    """``done`` (it wrote ``metrics.json``), ``running`` (its lock is held) or ``failed`` (with
    its last log line, or the step of its last checkpoint ``state``)."""
    if job.metrics:
        job.status = DONE
    elif lock_is_held(job.path):
        job.status = RUNNING
        job.reason = "training in progress (its lock is held)"
    else:
        job.status = FAILED
        job.reason = _last_log_line(job.path) or (
            "stopped without metrics.json, no process holds its lock"
            + (f"; last checkpoint at step {int(state['step'])}" if state is not None else "; no checkpoint")
        )


def _set_figures(job: Job, state: dict | None) -> None:
    """The monitored figure (``metrics.json``'s ``monitor``: ``nll`` for a model, ``loss`` for a
    vocoder) at the end, at its best and per tier, steps and wall time: ``metrics.json`` first,
    TensorBoard for what it lacks."""
    m = job.metrics
    job.monitor = str(m.get("monitor") or _monitor_of(job))
    job.monitor_label = str(m.get("monitor_label") or ("NLL" if job.monitor == "nll" else job.monitor))
    job.units = str(m.get("monitor_units") or ("nats per element" if job.monitor == "nll" else ""))
    mon = job.monitor
    job.tiers = int(m.get("tiers") or 0) or _tiers_of(job)
    valid = job.curves.get(f"valid/{mon}", Curve([], []))
    job.valid = _finite(m.get(f"valid_{mon}")) if f"valid_{mon}" in m else valid.last()
    job.best_valid, job.best_valid_step = valid.best()
    for g in range(1, job.tiers + 1):
        curve = job.curves.get(f"valid/{mon}_tier{g}")
        if curve is None and job.tiers == 1:
            curve = valid
        curve = curve or Curve([], [])
        key = f"valid_{mon}_tier{g}"
        job.tier_valid[g] = _finite(m.get(key)) if key in m else curve.last()
        job.tier_best_valid[g] = curve.best()[0]
    train_curve = job.curves.get(f"train/{mon}", Curve([], []))
    job.train = _finite(m.get(f"train_{mon}")) if f"train_{mon}" in m else train_curve.last()
    if "steps" in m:
        job.steps = int(m["steps"])
    elif state is not None and "step" in state:
        job.steps = int(state["step"])
    else:
        known = [c.steps[-1] for c in job.curves.values() if c.steps]
        job.steps = max(known) if known else None
    job.wall_seconds = _finite(m.get("train_seconds_this_run"))


def _monitor_of(job: Job) -> str:
    """The monitored figure of a run without ``metrics.json``: a trained inverter's ``loss``
    (its config says ``trains: inverter``), else a model's ``nll``."""
    return "loss" if (job.config or {}).get("trains") == "inverter" or "valid/loss" in job.curves else "nll"


def _tiers_of(job: Job) -> int:
    """Tiers of a run without ``metrics.json``: its config's ``tiers.layers``, else its curves."""
    layers = ((job.config or {}).get("tiers") or {}).get("layers")
    if isinstance(layers, list) and layers:
        return len(layers)
    tiers = [int(t[len("valid/nll_tier"):]) for t in job.curves if re.fullmatch(r"valid/nll_tier\d+", t)]
    return max(tiers) if tiers else 1


def _load_sample(job: Job) -> None:
    """The sample's image (features, or a log-mel of the WAV of a waveform) and its speed."""
    features = np.load(job.sample_npy, allow_pickle=False)
    if features.ndim == 1:
        features = features[:, None]
    if job.sample_seconds and job.sample_seconds > 0:
        job.sample_elements_per_second = features.size / job.sample_seconds
    if features.shape[-1] == 1:
        if job.sample_wav is None:
            job.notes.append("sample: a waveform without its WAV; no spectrogram shown")
            return
        job.sample_kind = "waveform"
        job.sample_image = wav_log_mel(job.sample_wav)
    else:
        rep = ((job.config or {}).get("representation") or {}).get("name") or "spectrogram"
        job.sample_kind = f"{rep} ({features.shape[1]} bins)"
        job.sample_image = np.asarray(features, dtype=np.float64)


def wav_log_mel(path: Path, n_mels: int = 64) -> np.ndarray:
    """``(frames, n_mels)`` log mel power (nats) of a WAV, for waveform models' samples (a
    1024-point STFT with hop 256, shorter for clips under 1024 samples)."""
    import librosa  # deferred: librosa loads numba and scipy on first use; start-up does not pay for it

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    n_fft = 1024
    while n_fft > 64 and n_fft > len(audio):
        n_fft //= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mel = librosa.feature.melspectrogram(
            y=audio, sr=sr, n_fft=n_fft, hop_length=max(n_fft // 4, 1), n_mels=min(n_mels, n_fft // 4), power=2.0
        )
    return np.log(np.maximum(mel, 1e-5)).T.astype(np.float64)


def label_jobs(jobs: list[Job]) -> list[str]:
    """Set every job's :attr:`Job.label` (the overrides that tell it from the others; for jobs
    without ``.hydra/overrides.yaml``, the ``config.yaml`` keys that differ between jobs) and
    return the overrides common to all jobs."""
    with_overrides = [j for j in jobs if j.overrides]
    common: list[str] = []
    if len(with_overrides) > 1:
        common = [o for o in with_overrides[0].overrides if all(o in j.overrides for j in with_overrides[1:])]
    flat = {j.name: flatten(j.config) for j in jobs if j.config}
    keys = sorted(k for k in set().union(*flat.values()) if len({repr(f.get(k, "<absent>")) for f in flat.values()}) > 1) \
        if len(flat) > 1 else []
    for j in jobs:
        if j.overrides:
            j.label = " ".join(o for o in j.overrides if o not in common) or ("(common overrides only)" if common else "")
        elif j.name in flat and keys:
            j.label = " ".join(f"{k}={_short(flat[j.name].get(k, '<absent>'))}" for k in keys)
            j.overrides = [f"{k}={_short(flat[j.name].get(k, '<absent>'))}" for k in keys]
        if not j.label:
            j.label = j.path.resolve().name
    for label in {j.label for j in jobs}:
        same = [j for j in jobs if j.label == label]
        if len(same) > 1:  # e.g. a job run twice with the same overrides: the directory tells them apart
            for j in same:
                j.label = f"{label} [{j.name}]"
    return common


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text.replace(" ", "")


def collect(root: str | os.PathLike) -> tuple[list[Job], list[str]]:
    """The jobs under ``root`` (see :func:`find_jobs`), read and labelled, and the overrides
    common to all of them."""
    root = Path(root)
    jobs = [read_job(p, root) for p in find_jobs(root)]
    return jobs, label_jobs(jobs)
