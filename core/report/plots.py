"""The report's figures (:mod:`melforge.core.report`): curves against step and the samples."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from .jobs import DONE, Job


def _pyplot():
    import matplotlib  # deferred: importing matplotlib takes 146 ms; start-up does not pay for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: importing matplotlib.pyplot takes 481 ms; start-up does not pay for it

    return plt


def plot_curves(path: Path, jobs: list[Job]) -> None:
    """Each job's monitored figure (``train/<monitor>`` and ``valid/<monitor>``: a model's NLL, a
    vocoder's loss) against step, one line per job, in two panels."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), dpi=100, layout="constrained")
    label = jobs[0].monitor_label if jobs else "NLL"
    for ax, split in zip(axes, ("train", "valid")):
        drawn = 0
        for k, j in enumerate(jobs):
            curve = j.curves.get(f"{split}/{j.monitor}")
            if curve is None or not curve.steps:
                continue
            values = np.array(curve.values, dtype=float)
            values[~np.isfinite(values)] = np.nan
            ax.plot(curve.steps, values, marker="." if len(curve.steps) < 30 else None, color=f"C{k % 10}",
                    label=_wrap(f"{j.label} ({j.status})" if j.status != DONE else j.label, 60))
            drawn += 1
        ax.set_title(f"{split} {label}", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(jobs[0].units if jobs and jobs[0].units else label)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no points in TensorBoard", ha="center", va="center", transform=ax.transAxes)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def shared_scale(images: Iterable[np.ndarray]) -> tuple[float, float] | None:
    """One ``(vmin, vmax)`` over the finite values of every image (``None``: none has any), so
    that images drawn with it compare by colour."""
    lo, hi = np.inf, -np.inf
    for image in images:
        finite = image[np.isfinite(image)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if lo > hi:
        return None
    return lo, hi if hi > lo else lo + 1e-6


def colour_scales(jobs: list[Job]) -> dict[str, tuple[float, float]]:
    """One ``(vmin, vmax)`` per kind of sample image, over every job's finite values."""
    kinds: dict[str, list[np.ndarray]] = {}
    for j in jobs:
        if j.sample_image is not None:
            kinds.setdefault(j.sample_kind, []).append(j.sample_image)
    return {kind: scale for kind, images in kinds.items() if (scale := shared_scale(images)) is not None}


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


def spectrogram_png_bytes(image: np.ndarray, scale: tuple[float, float]) -> bytes:
    """A PNG of ``image: (frames, bins)`` (frames on x, bins upwards) drawn from ``scale[0]`` to
    ``scale[1]`` with a colour bar: a report card's spectrogram."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 2.6), dpi=90, layout="constrained")
    im = ax.imshow(image.T, origin="lower", aspect="auto", cmap="magma", vmin=scale[0], vmax=scale[1],
                   interpolation="nearest")
    ax.set_xlabel("frame", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=ax).ax.tick_params(labelsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def sample_png_bytes(job: Job, scale: tuple[float, float] | None) -> bytes | None:
    """A PNG of the job's sample on the common colour scale of its kind (else its own
    ``samples/sample_000.png``; ``None`` when it has neither)."""
    if job.sample_image is not None and scale is not None:
        return spectrogram_png_bytes(job.sample_image, scale)
    if job.sample_png is not None:
        return job.sample_png.read_bytes()
    return None
