"""Sampling a trained model and rendering the result: features (.npy), plot (.png), audio (.wav)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_path
from .audio_io import write_wav
from .checkpoint import load_checkpoint
from .device import resolve_device
from .experiment import build_experiment, place_experiment
from .inverter import Inverter
from .multiscale import MultiscaleModel, check_sample_shape
from .normalization import Normalizer
from .plotting import save_spectrogram_png, save_tier_stages_png
from .progress import bar as progress_bar
from .representation import Representation
from .sampler import Sampler
from .speakers import SpeakerVocabulary
from .tiers import interleave, tier_axis

#: Sampled values are clipped to this many per-bin standard deviations (normalised units) before
#: they are denormalised, plotted and inverted: a GMM tail draw of an undertrained model (σ up
#: to e^5) would otherwise overflow ``exp`` in the inverse of a log representation.
CLIP_STD = 8.0


@dataclass
class RenderedSample:
    """One written sample: its files and its log-likelihood under the model."""

    png: Path
    wav: Path
    npy: Path
    nll_per_element: float  # nats, over the sampled (not primed) elements of every tier
    seconds: float  # wall time for sampling this spectrogram
    tier_nll_per_element: list[float] | None = None  # nats, per tier
    tiers_png: Path | None = None  # coarse-to-fine stages (multiscale models)
    speaker: str | None = None
    primed_frames: int = 0
    clipped_elements: int = 0  # sampled values beyond ±CLIP_STD, clipped before writing

    def summary(self) -> dict:
        """JSON-ready fields (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def render_samples(
    model: MultiscaleModel,
    samplers: list[Sampler],
    representation: Representation,
    normalizer: Normalizer,
    inverter: Inverter | None,
    out_dir: str | Path,
    *,
    count: int = 1,
    frames: int = 128,
    temperature: float | list[float] = 1.0,
    seed: int = 0,
    prefix: str = "sample",
    speakers: SpeakerVocabulary | None = None,
    speaker: str | None = None,
    prime: torch.Tensor | None = None,
) -> list[RenderedSample]:
    """Draw ``count`` spectrograms of ``frames`` frames in one batched call (coarse to fine for a
    multiscale model; every tier's sampler reads its weights once per step for all of them),
    denormalise them, and write ``<prefix>_<k>.npy`` (``(frames, n_bins)`` unnormalised
    features), ``.png`` (``representation.to_image``), ``.wav`` (``representation.to_audio(features,
    inverter)`` at the representation's sample rate) and, with several tiers, ``_tiers.png`` into
    ``out_dir``. Sampled values beyond ``±CLIP_STD`` (normalised) are clipped first and counted;
    primed frames are written as they are. A progress bar per tier counts the batch's frames on
    stderr (see :func:`frame_progress`).

    Args:
        samplers: the sampler of each tier (:func:`melforge.core.sampler.select_sampler`).
        temperature: biasing, one value or one per tier (seed 000 §6).
        speakers: the model's speaker vocabulary when it is speaker-conditioned; sample ``k``
            is drawn for ``speaker`` if given, else for speaker ``k mod len(speakers)``.
        prime: ``(1, P, n_bins)`` normalised frames every sample continues (priming).

    Returns:
        One :class:`RenderedSample` per spectrogram; its ``seconds`` is its share of the batch's
        wall time.

    Raises:
        KeyError: ``speaker`` is not in ``speakers``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if count <= 0:
        return []
    device = next(model.parameters()).device  # samplers draw on the model's device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    labels: list[str | None] = [None] * count
    cond = None
    if speakers is not None:
        labels = [speaker if speaker is not None else speakers.labels[k % len(speakers)] for k in range(count)]
        cond = speakers.one_hot(labels).to(device)  # (count, speakers)
    primed = 0 if prime is None else int(prime.shape[1])
    prime = prime.to(device).expand(count, -1, -1) if prime is not None else None
    model.eval()
    start = time.perf_counter()
    with frame_progress(model, frames, representation.n_bins, primed, f"{prefix}s ×{count}") as progress:
        result = model.sample(
            samplers, batch=count, frames=frames, bins=representation.n_bins, temperature=temperature,
            generator=generator, cond=cond, prime=prime, progress=progress,
        )
    seconds = (time.perf_counter() - start) / max(count, 1)
    writer = _SampleWriter(representation, normalizer, inverter, out_dir, prefix, temperature, primed)
    return [writer.write(result, k, labels[k], seconds) for k in range(count)]


@dataclass
class _SampleWriter:
    """Writes sample ``k`` of a batched draw: its features, plot, audio and tier stages."""

    representation: Representation
    normalizer: Normalizer
    inverter: Inverter | None
    out_dir: Path
    prefix: str
    temperature: float | list[float]
    primed: int

    def write(self, result: Any, k: int, label: str | None, seconds: float) -> RenderedSample:
        """Sample ``k`` of ``result`` (a :class:`~melforge.core.multiscale.MultiscaleResult`-like
        batch) written to disk."""
        primed, rep, prefix = self.primed, self.representation, self.prefix
        x = result.x[k].detach().to("cpu", torch.float32).clone()
        clipped = int((x[primed:].abs() > CLIP_STD).sum())
        x[primed:] = x[primed:].clamp(-CLIP_STD, CLIP_STD)  # the real (primed) frames stay exact
        feats = self.normalizer.denormalize(x.numpy())  # (frames, n_bins)
        stem = self.out_dir / (f"{prefix}_{k:03d}" + (f"_{label}" if label else ""))
        npy = stem.with_suffix(".npy")
        with atomic_path(npy) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, feats)
        nll = -float(result.log_prob[k]) / max(1, result.sampled_elements)
        tier_nll = [
            -float(lp[k]) / max(1, n) for lp, n in zip(result.tier_log_probs or [], result.tier_sampled_elements or [])
        ]
        png = save_spectrogram_png(
            rep.to_image(feats), stem.with_suffix(".png"),
            title=f"{prefix} {k}{f' ({label})' if label else ''}: T={self.temperature}, "
            f"{f'primed {primed} frames, ' if primed else ''}NLL {nll:.3f} nats/element ({nll / math.log(2):.3f} bits)",
            hop_seconds=rep.image_hop_length / rep.sr,
        )
        tiers_png = self.tier_stages(result, k, stem)
        wav = write_wav(stem.with_suffix(".wav"), rep.to_audio(feats, self.inverter), rep.sr)
        return RenderedSample(png, wav, npy, nll, seconds, tier_nll or None, tiers_png, label, primed, clipped)

    def tier_stages(self, result: Any, k: int, stem: Path) -> Path | None:
        """The coarse-to-fine stages of sample ``k`` as one figure (several tiers only)."""
        if result.tiers is None or len(result.tiers) <= 1:
            return None
        x = result.tiers[0][k : k + 1].cpu()
        stages = [x[0].numpy()]
        for g in range(2, len(result.tiers) + 1):
            x = interleave(result.tiers[g - 1][k : k + 1].cpu(), x, tier_axis(g))
            stages.append(x[0].numpy())
        return save_tier_stages_png(
            stages, stem.parent / (stem.name + "_tiers.png"), title=f"{self.prefix} {k}: coarse to fine (normalised)"
        )


@contextlib.contextmanager
def frame_progress(model: MultiscaleModel, frames: int, bins: int, primed: int, title: str) -> Iterator[Any]:
    """A progress bar per tier on stderr while a batch of spectrograms ``(batch, frames, bins)`` is drawn
    from ``model`` (``primed`` frames given): yields the ``progress(g, n)`` callback that
    :meth:`MultiscaleModel.sample` hands each tier's sampler (``SampleRequest.progress``)."""
    shapes = model.schedule.shapes(frames, bins)
    bars: dict[int, Any] = {}

    def progress(g: int, n: int) -> None:
        if g not in bars:
            for bar in bars.values():
                bar.close()
            desc = title + (f", tier {g}/{model.n_tiers}" if model.n_tiers > 1 else "")
            total = shapes[g - 1][0] - primed * shapes[g - 1][0] // frames  # primed frames split like the rest
            bars[g] = progress_bar(total, desc, unit="frame")  # tqdm on a terminal, a line every 10 s off one
        bars[g].update(n)

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()


def sample_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    sample_cfg: dict,
    *,
    inverter_cfg: dict | None = None,
    sampler_cfg: dict | None = None,
    threads: int | None = None,
    device: str = "auto",
) -> list[RenderedSample]:
    """Rebuild the experiment of ``checkpoint`` (:func:`melforge.core.experiment.build_experiment`)
    and render ``sample_cfg["count"]`` samples into ``out_dir`` (see :func:`render_samples`).
    ``inverter_cfg`` / ``sampler_cfg`` / ``threads`` replace the checkpoint's inverter, sampler
    and torch thread count when given. The model is loaded onto ``device`` (``auto``, ``cpu``,
    ``cuda``, ``cuda:N``, ``mps``; :func:`melforge.core.device.resolve_device`) and sampled
    there, by a sampler that runs on it.

    ``sample_cfg`` keys: ``count``, ``frames``, ``temperature`` (one value or one per tier),
    ``seed``, and optionally ``speaker`` (a label of a speaker-conditioned model),
    ``prime_frames`` (continue the first frames of ``prime_audio``, or of the first validation
    clip of the checkpoint's dataset when ``prime_audio`` is null).

    Raises:
        CheckpointError: the file is missing, refused or not a melforge checkpoint (named).
        DeviceError: ``device`` is not on this machine (named).
        SamplerError: the configured sampler does not run on ``device`` (named).
        ValueError: a shape that does not divide into the model's tiers, or priming audio that
            is too short (named).
        KeyError: an unknown ``speaker``.
    """
    placed = resolve_device(device)
    state = load_checkpoint(checkpoint, map_location=placed)
    cfg = dict(state["config"])
    if inverter_cfg:
        cfg["inverter"] = inverter_cfg
    if sampler_cfg:
        cfg["sampler"] = sampler_cfg
    exp = build_experiment(cfg, state=state, need_corpus=False)
    place_experiment(exp, placed)
    torch.set_num_threads(int(threads or cfg.get("threads", 2)))
    frames = int(sample_cfg["frames"])
    prime_frames = int(sample_cfg.get("prime_frames", 0) or 0)
    check_sample_shape(exp.model, exp.representation.n_bins, frames, prime_frames)
    prime, prime_speaker = None, None
    if prime_frames:
        prime, prime_speaker = exp.prime(prime_frames, sample_cfg.get("prime_audio"))
    return render_samples(
        exp.model, exp.samplers, exp.representation, exp.normalizer, exp.inverter, out_dir,
        count=int(sample_cfg["count"]), frames=frames,
        temperature=sample_cfg["temperature"], seed=int(sample_cfg["seed"]),
        speakers=exp.speakers, speaker=sample_cfg.get("speaker") or prime_speaker, prime=prime,
    )
