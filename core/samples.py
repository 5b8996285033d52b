"""Sampling a trained model and rendering the result: features (.npy), plot (.png), audio (.wav)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .audio_io import write_wav
from .atomic import atomic_path
from .inverter import Inverter
from .model import SpectrogramModel
from .normalization import Normalizer
from .plotting import save_spectrogram_png
from .representation import Representation


@dataclass
class RenderedSample:
    """One written sample: its files and its log-likelihood under the model."""

    png: Path
    wav: Path
    npy: Path
    nll_per_element: float  # nats, over the sampled (not primed) elements
    seconds: float  # wall time for sampling this spectrogram


def render_samples(
    model: SpectrogramModel,
    representation: Representation,
    normalizer: Normalizer,
    inverter: Inverter,
    out_dir: str | Path,
    *,
    count: int = 1,
    frames: int = 128,
    temperature: float = 1.0,
    seed: int = 0,
    prefix: str = "sample",
) -> list[RenderedSample]:
    """Draw ``count`` spectrograms of ``frames`` frames one at a time, denormalise them, and
    write ``<prefix>_<k>.npy`` (``(frames, n_bins)`` unnormalised features), ``.png`` and ``.wav``
    (inverted with ``inverter`` at the representation's sample rate) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(int(seed))
    model.eval()
    results = []
    stft = representation.stft
    for k in range(count):
        start = time.perf_counter()
        result = model.sample(
            batch=1, frames=frames, bins=representation.n_bins, temperature=temperature, generator=generator
        )
        seconds = time.perf_counter() - start
        feats = normalizer.denormalize(result.x[0].numpy())  # (frames, n_bins)
        stem = out_dir / f"{prefix}_{k:03d}"
        npy = stem.with_suffix(".npy")
        with atomic_path(npy) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, feats)
        nll = -float(result.log_prob[0]) / max(1, result.sampled_elements)
        png = save_spectrogram_png(
            feats,
            stem.with_suffix(".png"),
            title=f"{prefix} {k}: T={temperature}, NLL {nll:.3f} nats/element ({nll / math.log(2):.3f} bits)",
            hop_seconds=stft.hop_length / stft.sr,
        )
        audio = inverter.invert(representation.to_magnitude(feats), stft)
        wav = write_wav(stem.with_suffix(".wav"), audio, stft.sr)
        results.append(RenderedSample(png, wav, npy, nll, seconds))
    return results
