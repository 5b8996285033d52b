"""``melforge-report``: turn a run directory or a sweep directory into a table, curves, sample
spectrograms and a self-contained HTML page with audio players.

What is read, per job (a run directory):

- ``metrics.json`` (a finished run): final NLLs, steps, wall time, the first sample's speed;
- ``tensorboard/`` event files: the ``train/nll`` and ``valid/nll`` (and ``valid/nll_tier<g>``)
  curves, the best validation NLL, and the latest values of runs without ``metrics.json``;
- ``checkpoints/last.pt`` (read with :func:`~melforge.core.checkpoint.load_checkpoint`, no code
  run): the number of parameters, and the step of an unfinished run;
- ``samples/sample_000.{npy,wav,png}``; ``.hydra/overrides.yaml`` (else the keys of
  ``config.yaml`` that differ between the jobs); ``*.log`` (the last line of a failed run);
- ``.melforge.lock``: a run without ``metrics.json`` whose lock is held by a live process is
  *running*; otherwise it *failed*.

Nothing a job lacks (a failed or running job, an empty event file, NaN metrics) stops the
report: the value is left empty and the job's status says why.
"""

from __future__ import annotations

import base64
import csv
import fcntl
import html
import io
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, atomic_write
from .run_dir import LOCK, flatten

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
    valid_nll: float | None = None
    best_valid_nll: float | None = None
    best_valid_step: int | None = None
    tier_valid_nll: dict[int, float | None] = field(default_factory=dict)
    tier_best_valid_nll: dict[int, float | None] = field(default_factory=dict)
    train_nll: float | None = None
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


# ---------------------------------------------------------------------------------------------
# finding and reading jobs


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
    import yaml

    return yaml.safe_load(path.read_text())


def read_curves(tb_dir: Path) -> dict[str, Curve]:
    """Every scalar in ``tb_dir``'s event files (``{}`` when there are none or they are empty)."""
    if not tb_dir.is_dir() or not any(tb_dir.glob("events.out.tfevents.*")):
        return {}
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

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
    import torch

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
        from .checkpoint import load_checkpoint

        state = attempt("checkpoints/last.pt", lambda: load_checkpoint(last))
        if state is not None and isinstance(state.get("model"), dict):
            job.parameters = _count_parameters(state["model"])

    # status
    if job.metrics:
        job.status = DONE
    elif lock_is_held(path):
        job.status = RUNNING
        job.reason = "training in progress (its lock is held)"
    else:
        job.status = FAILED
        job.reason = _last_log_line(path) or (
            "stopped without metrics.json, no process holds its lock"
            + (f"; last checkpoint at step {int(state['step'])}" if state is not None else "; no checkpoint")
        )

    # numbers: metrics.json first, TensorBoard for what it lacks
    m = job.metrics
    job.tiers = int(m.get("tiers") or 0) or _tiers_of(job)
    valid = job.curves.get("valid/nll", Curve([], []))
    job.valid_nll = _finite(m.get("valid_nll")) if "valid_nll" in m else valid.last()
    job.best_valid_nll, job.best_valid_step = valid.best()
    for g in range(1, job.tiers + 1):
        curve = job.curves.get(f"valid/nll_tier{g}")
        if curve is None and job.tiers == 1:
            curve = valid
        curve = curve or Curve([], [])
        key = f"valid_nll_tier{g}"
        job.tier_valid_nll[g] = _finite(m.get(key)) if key in m else curve.last()
        job.tier_best_valid_nll[g] = curve.best()[0]
    train_curve = job.curves.get("train/nll", Curve([], []))
    job.train_nll = _finite(m.get("train_nll")) if "train_nll" in m else train_curve.last()
    if "steps" in m:
        job.steps = int(m["steps"])
    elif state is not None and "step" in state:
        job.steps = int(state["step"])
    else:
        known = [c.steps[-1] for c in job.curves.values() if c.steps]
        job.steps = max(known) if known else None
    job.wall_seconds = _finite(m.get("train_seconds_this_run"))

    # the first sample
    for suffix in ("npy", "wav", "png"):
        p = path / f"{SAMPLE}.{suffix}"
        if p.is_file():
            setattr(job, f"sample_{suffix}", p)
    samples = m.get("samples") or []
    if samples and isinstance(samples[0], dict):
        job.sample_seconds = _finite(samples[0].get("seconds"))
    if job.sample_npy is not None:
        attempt("samples/sample_000.npy", lambda: _load_sample(job))
    return job


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
    import librosa
    import soundfile as sf

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


# ---------------------------------------------------------------------------------------------
# the table


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _rel(path: Path | None, root: Path) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def table_rows(jobs: list[Job], root: Path) -> tuple[list[str], list[list[Any]]]:
    """The report's table: headers and one row of raw values per job."""
    tiers = max((j.tiers for j in jobs), default=1)
    headers = ["job", "overrides", "all_overrides", "status", "reason", "valid_nll", "best_valid_nll", "best_valid_step"]
    if tiers > 1:
        for g in range(1, tiers + 1):
            headers += [f"valid_nll_tier{g}", f"best_valid_nll_tier{g}"]
    headers += ["train_nll", "steps", "wall_seconds", "parameters", "sample_seconds", "sample_elements_per_second",
                "sample_png", "sample_wav", "sample_npy"]
    rows = []
    for j in jobs:
        row: list[Any] = [j.name, j.label, " ".join(j.overrides), j.status, j.reason, j.valid_nll, j.best_valid_nll,
                          j.best_valid_step]
        if tiers > 1:
            for g in range(1, tiers + 1):
                row += [j.tier_valid_nll.get(g), j.tier_best_valid_nll.get(g)]
        row += [j.train_nll, j.steps, j.wall_seconds, j.parameters, j.sample_seconds, j.sample_elements_per_second,
                _rel(j.sample_png, root), _rel(j.sample_wav, root), _rel(j.sample_npy, root)]
        rows.append(row)
    return headers, rows


def write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> None:
    """The table as CSV: numbers at full precision, empty cells for unknown values."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:  # a full disk is named (core.atomic)
        w = csv.writer(f)
        w.writerow(headers)
        for row in rows:
            w.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])


#: Columns of the Markdown and HTML tables (``all_overrides``, ``reason`` and the raw paths go
#: elsewhere: the common overrides above the table, reasons under it).
_SHOWN = {
    "job": "job", "overrides": "overrides", "status": "status", "valid_nll": "valid NLL", "best_valid_nll": "best valid NLL",
    "best_valid_step": "at step", "train_nll": "train NLL", "steps": "steps", "wall_seconds": "wall s",
    "parameters": "parameters", "sample_seconds": "sample s", "sample_elements_per_second": "sample elements/s",
    "sample_wav": "sample",
}


def _shown(headers: list[str]) -> list[tuple[int, str]]:
    out = []
    for i, h in enumerate(headers):
        if h in _SHOWN:
            out.append((i, _SHOWN[h]))
        elif m := re.fullmatch(r"(best_)?valid_nll_tier(\d+)", h):
            out.append((i, f"{'best ' if m.group(1) else ''}valid NLL tier {m.group(2)}"))
    return out


def _short_job(name: str, width: int = 40) -> str:
    """A sweep job's directory for the tables: Hydra's ``<num>_<every override>`` names run long;
    past ``width`` characters, ``<num>_…`` (the overrides column says the rest; the CSV keeps it whole)."""
    m = re.match(r"(\d+)_", name)
    return f"{m.group(1)}_…" if m and len(name) > width else name


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(path: Path, root: Path, jobs: list[Job], common: list[str], headers: list[str], rows: list[list[Any]]) -> None:
    cols = _shown(headers)
    lines = [f"# melforge report: {root.resolve().name}", ""]
    lines.append(f"{len(jobs)} job(s): " + ", ".join(f"{sum(j.status == s for j in jobs)} {s}" for s in (DONE, RUNNING, FAILED)) + ".")
    if common:
        lines.append(f"Overrides common to every job: `{' '.join(common)}`.")
    lines += ["NLLs in nats per element (the whole spectrogram; per tier where the model has tiers); "
              "best: the lowest validation NLL in TensorBoard, at its step.", ""]
    lines.append("| " + " | ".join(name for _, name in cols) + " |")
    lines.append("|" + "|".join(" --- " for _ in cols) + "|")
    for row in rows:
        cells = []
        for i, _ in cols:
            text = _md_cell(_fmt(row[i]))
            if headers[i] == "job":
                text = _short_job(text)
            elif headers[i] == "sample_wav" and text:
                text = f"[wav](<{text}>)"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    notes = [(j, j.reason) for j in jobs if j.reason] + [(j, n) for j in jobs for n in j.notes]
    if notes:
        lines += ["Notes:", ""] + [f"- `{j.name}`: {_md_cell(text)}" for j, text in notes] + [""]
    lines += ["![training and validation NLL](curves.png)", "", "![first sample of every job](samples.png)", ""]
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines)))


# ---------------------------------------------------------------------------------------------
# figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(path: Path, jobs: list[Job]) -> None:
    """``train/nll`` and ``valid/nll`` against step, one line per job, in two panels."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), dpi=100, layout="constrained")
    for ax, tag, title in zip(axes, ("train/nll", "valid/nll"), ("train NLL", "valid NLL")):
        drawn = 0
        for k, j in enumerate(jobs):
            curve = j.curves.get(tag)
            if curve is None or not curve.steps:
                continue
            values = np.array(curve.values, dtype=float)
            values[~np.isfinite(values)] = np.nan
            ax.plot(curve.steps, values, marker="." if len(curve.steps) < 30 else None, color=f"C{k % 10}",
                    label=_wrap(f"{j.label} ({j.status})" if j.status != DONE else j.label, 60))
            drawn += 1
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("nats per element")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no points in TensorBoard", ha="center", va="center", transform=ax.transAxes)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def colour_scales(jobs: list[Job]) -> dict[str, tuple[float, float]]:
    """One ``(vmin, vmax)`` per kind of sample image, over every job's finite values."""
    scales: dict[str, tuple[float, float]] = {}
    for j in jobs:
        if j.sample_image is None:
            continue
        finite = j.sample_image[np.isfinite(j.sample_image)]
        if not finite.size:
            continue
        lo, hi = float(finite.min()), float(finite.max())
        if j.sample_kind in scales:
            lo, hi = min(lo, scales[j.sample_kind][0]), max(hi, scales[j.sample_kind][1])
        scales[j.sample_kind] = (lo, hi if hi > lo else lo + 1e-6)
    return scales


def plot_samples(path: Path, jobs: list[Job], scales: dict[str, tuple[float, float]]) -> None:
    """Every job's first sample side by side, one colour scale per kind of image."""
    plt = _pyplot()
    n = max(len(jobs), 1)
    kinds = {j.sample_kind for j in jobs if j.sample_image is not None and j.sample_kind in scales}
    fig, axes = plt.subplots(1, n, figsize=(max(3.2 * n + 1.2 * len(kinds), 4.5), 3.6), dpi=100, squeeze=False,
                             layout="constrained")
    images: dict[str, list] = {}
    for ax, j in zip(axes[0], jobs):
        ax.set_title(_wrap(j.label, 40) + ("" if j.status == DONE else f"\n({j.status})"), fontsize=8)
        if j.sample_image is None or j.sample_kind not in scales:
            ax.text(0.5, 0.5, "no sample", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        lo, hi = scales[j.sample_kind]
        im = ax.imshow(j.sample_image.T, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi,
                       interpolation="nearest")
        images.setdefault(j.sample_kind, []).append((ax, im))
        ax.set_xlabel("frame")
        ax.set_ylabel("mel channel of the WAV" if j.sample_kind == "waveform" else j.sample_kind, fontsize=8)
    for kind, drawn in images.items():  # one colour bar per kind, beside its panels
        fig.colorbar(drawn[-1][1], ax=[ax for ax, _ in drawn], label=f"log power (nats): {kind}", fraction=0.05, pad=0.01)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(" "), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    lines.append(line)
    return "\n".join(lines)


def sample_png_bytes(job: Job, scale: tuple[float, float] | None) -> bytes | None:
    """A PNG of the job's sample on the common colour scale of its kind (else its own
    ``samples/sample_000.png``; ``None`` when it has neither)."""
    if job.sample_image is not None and scale is not None:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(4.2, 2.6), dpi=90, layout="constrained")
        im = ax.imshow(job.sample_image.T, origin="lower", aspect="auto", cmap="magma", vmin=scale[0], vmax=scale[1],
                       interpolation="nearest")
        ax.set_xlabel("frame", fontsize=8)
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax).ax.tick_params(labelsize=7)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()
    if job.sample_png is not None:
        return job.sample_png.read_bytes()
    return None


# ---------------------------------------------------------------------------------------------
# HTML


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fff0f0; }
tr.running td { background: #fffbe6; }
img.figure { max-width: 100%; }
div.table { max-width: 100%; overflow-x: auto; }
td.sample img { display: block; max-width: 480px; }
td.sample audio { display: block; width: 100%; min-width: 240px; margin-top: 4px; }
.small { font-size: 11px; color: #666; }
"""


def _html_cell(header: str, value: Any, job: Job) -> str:
    """One table cell of ``job``'s row for column ``header``."""
    e = html.escape
    text = e(_fmt(value))
    if header == "status" and job.reason:
        text += f"<div class=\"small\">{e(job.reason)}</div>"
    if header == "overrides":
        text = f"<code>{text}</code>"
    if header == "job":
        text = f"<span title=\"{text}\">{e(_short_job(job.name))}</span>"
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"<td class=\"num\">{text}</td>" if numeric else f"<td>{text}</td>"


def _sample_cell(job: Job, root: Path, scale: tuple[float, float] | None) -> str:
    """``job``'s spectrogram with its audio player right below it, both embedded."""
    e = html.escape
    png = sample_png_bytes(job, scale)
    parts = [f"<img alt=\"sample of {e(job.name)}\" src=\"{_data_uri('image/png', png)}\">" if png else "no sample"]
    if job.sample_wav is not None:
        parts.append(f"<audio controls preload=\"metadata\" src=\"{_data_uri('audio/wav', job.sample_wav.read_bytes())}\"></audio>"
                     f"<div class=\"small\">{e(_rel(job.sample_wav, root))}</div>")
    else:
        parts.append("<div class=\"small\">no audio</div>")
    return "<td class=\"sample\">" + "".join(parts) + "</td>"


def write_html(path: Path, root: Path, jobs: list[Job], common: list[str], headers: list[str], rows: list[list[Any]],
               scales: dict[str, tuple[float, float]], figures: dict[str, Path]) -> None:
    """The table with each job's spectrogram and an audio player, every image and sound
    embedded (base64 data URIs): one file that opens from disk."""
    e = html.escape
    cols = [(i, name) for i, name in _shown(headers) if headers[i] != "sample_wav"]
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>melforge report: {e(root.resolve().name)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>melforge report: {e(root.resolve().name)}</h1>"]
    counts = ", ".join(f"{sum(j.status == s for j in jobs)} {s}" for s in (DONE, RUNNING, FAILED))
    out.append(f"<p>{len(jobs)} job(s): {counts}. NLLs in nats per element.</p>")
    if common:
        out.append(f"<p>Overrides common to every job: <code>{e(' '.join(common))}</code></p>")
    # Each job's spectrogram and audio player share one cell, right after the job's name, so the
    # player stays beside its spectrogram and on screen however many columns the table has; the
    # table scrolls inside its own box rather than widening the page.
    head = [f"<th>{e(name)}</th>" for _, name in cols]
    out.append("<div class=\"table\"><table><tr>" + "".join(head[:1]) + "<th>sample (listen below)</th>"
               + "".join(head[1:]) + "</tr>")
    for j, row in zip(jobs, rows):
        cells = [_html_cell(headers[i], row[i], j) for i, _ in cols]
        cells.insert(1, _sample_cell(j, root, scales.get(j.sample_kind)))
        out.append(f"<tr class=\"{e(j.status)}\">" + "".join(cells) + "</tr>")
    out.append("</table></div>")
    notes = [(j, n) for j in jobs for n in j.notes]
    if notes:
        out.append("<ul>" + "".join(f"<li><code>{e(j.name)}</code>: {e(n)}</li>" for j, n in notes) + "</ul>")
    for title, fig in figures.items():
        if fig.is_file():
            out.append(f"<h2>{e(title)}</h2><img class=\"figure\" alt=\"{e(title)}\" src=\"{_data_uri('image/png', fig.read_bytes())}\">")
    out.append("</body></html>")
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(out) + "\n"))


# ---------------------------------------------------------------------------------------------


def write_report(root: str | os.PathLike) -> tuple[list[Job], dict[str, Path]]:
    """Read the run or sweep directory ``root`` and write ``report.md``, ``report.csv``,
    ``curves.png``, ``samples.png`` and ``report.html`` into it.

    Returns:
        The jobs read, and ``{output name: path}``.

    Raises:
        NoRunsFound: ``root`` holds no run.
    """
    from .atomic import atomic_path

    root = Path(root)
    jobs, common = collect(root)
    headers, rows = table_rows(jobs, root)
    scales = colour_scales(jobs)
    paths = {name: root / name for name in OUTPUTS}
    with atomic_path(paths["report.csv"]) as tmp:
        write_csv(tmp, headers, rows)
    with atomic_path(paths["report.md"]) as tmp:
        write_markdown(tmp, root, jobs, common, headers, rows)
    with atomic_path(paths["curves.png"]) as tmp:
        plot_curves(tmp, jobs)
    with atomic_path(paths["samples.png"]) as tmp:
        plot_samples(tmp, jobs, scales)
    with atomic_path(paths["report.html"]) as tmp:
        write_html(tmp, root, jobs, common, headers, rows, scales,
                   {"NLL against step": paths["curves.png"], "first sample of every job": paths["samples.png"]})
    return jobs, paths
