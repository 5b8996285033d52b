"""Spectrogram figures (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path


def spectrogram_figure(features: np.ndarray, *, title: str = "", hop_seconds: float | None = None):
    """A matplotlib figure of ``features: (frames, bins)``, time on x, bins upwards."""
    import matplotlib  # deferred: importing matplotlib takes 179 ms; start-up does not pay for it

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # deferred: importing matplotlib.pyplot takes 797 ms; start-up does not pay for it

    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    frames = features.shape[0]
    extent = None
    if hop_seconds:
        extent = (0, frames * hop_seconds, 0, features.shape[1])
    im = ax.imshow(features.T, origin="lower", aspect="auto", cmap="magma", extent=extent, interpolation="nearest")
    ax.set_xlabel("time (s)" if hop_seconds else "frame")
    ax.set_ylabel("mel channel")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="log power (nats)")
    fig.tight_layout()
    return fig


def save_spectrogram_png(features: np.ndarray, path: str | Path, **kwargs) -> Path:
    """Save :func:`spectrogram_figure` of ``features: (frames, bins)`` to ``path`` atomically."""
    import matplotlib.pyplot as plt  # deferred: importing matplotlib.pyplot takes 797 ms; start-up does not pay for it

    fig = spectrogram_figure(features, **kwargs)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def save_tier_stages_png(stages: list[np.ndarray], path: str | Path, *, title: str = "") -> Path:
    """Save the coarse-to-fine stages of a multiscale sample side by side (as seed 000 Figure 4):
    ``stages[k]: (frames_k, bins_k)`` is the spectrogram after tier ``k + 1`` (``x_<k+2``)."""
    import matplotlib  # deferred: importing matplotlib takes 179 ms; start-up does not pay for it

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # deferred: importing matplotlib.pyplot takes 797 ms; start-up does not pay for it

    fig, axes = plt.subplots(1, len(stages), figsize=(3.2 * len(stages), 3.0), dpi=100, squeeze=False)
    for k, (ax, stage) in enumerate(zip(axes[0], stages)):
        ax.imshow(stage.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
        ax.set_title(f"{'tier 1' if k == 0 else f'tiers 1–{k + 1}'}: {stage.shape[1]} bins × {stage.shape[0]} frames", fontsize=9)
        ax.set_xlabel("frame")
        if k == 0:
            ax.set_ylabel("bin")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
