"""Training the phase-gradient vocoder: audio → (log-mel input, targets) crops, the training
set's statistics, and the losses of eq. 7–11, as a :class:`melforge.core.learner.Learner` that
the one training loop (:func:`melforge.core.training.train`) drives.

Every clip is analysed once into a ``(frames, n_mels + 4·bins)`` float32 array: the log-mel
input (the run's representation's features, natural-log mel power), then the targets of
:func:`melforge.core.dsp.phase_targets.phase_targets`: the log-magnitude
``½ log max(|X|², floor)`` (nats; ``floor`` is the representation's power floor), Δm (bins),
Δn (frames) and λ, each ``bins`` wide.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from melforge.core.clips import split_clips
from melforge.core.config_schema import TrainApp, typed
from melforge.core.inverter import InverterTrainingParts
from melforge.core.learner import Learner, OptimizerSpec, Placement, StepContext
from melforge.core.normalization import Normalizer
from melforge.core.dsp.phase_targets import phase_targets

from .losses import LossWeights, dct_matrix, vocoder_losses
from .network import NetworkSpec, PhaseGradientNet
from .warp import mel_warp


class MelGeometry:
    """What a mel representation fixes for the vocoder: the STFT, the filterbank and the power
    floor (``Representation.mel_analysis``).

    Raises:
        ValueError: not a mel representation (names it and says the vocoder needs one).
    """

    def __init__(self, representation):
        try:
            analysis = representation.mel_analysis()
        except ValueError as exc:
            raise ValueError(f"pg_vocoder: trains on a mel representation (e.g. log_mel): {exc}") from None
        self.stft, self.floor = analysis.stft, float(analysis.floor)
        self.mel_basis = np.asarray(analysis.mel_basis, dtype=np.float32)  # (n_mels, bins)
        self.n_mels, self.n_bins = self.mel_basis.shape


def analyse_clip(audio: np.ndarray, representation, geometry: MelGeometry) -> np.ndarray:
    """``(samples,)`` audio → ``(frames, n_mels + 4·bins)`` float32: log-mel, log-magnitude,
    Δm, Δn, λ (see the module docstring).

    Raises:
        ValueError: the representation's frames differ from the STFT's (another framing).
    """
    mel = representation.analyze(audio)  # (frames, n_mels)
    t = phase_targets(audio, geometry.stft)  # (frames, bins) each
    if mel.shape[0] != t.magnitude.shape[0]:
        raise ValueError(f"pg_vocoder: the representation gives {mel.shape[0]} frames, the STFT {t.magnitude.shape[0]}")
    logmag = 0.5 * np.log(np.maximum(t.magnitude**2, geometry.floor))
    return np.concatenate([mel, logmag, t.dm, t.dn, t.lam], axis=1).astype(np.float32)


def split_columns(batch: torch.Tensor, n_mels: int, n_bins: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(batch, frames, n_mels + 4·bins)`` → log-mel ``(batch, frames, n_mels)`` and the
    targets ``{"logmag", "dm", "dn", "lam"}``, ``(batch, frames, bins)`` each."""
    mel = batch[..., :n_mels]
    rest = batch[..., n_mels:]
    names = ("logmag", "dm", "dn", "lam")
    return mel, {k: rest[..., i * n_bins : (i + 1) * n_bins] for i, k in enumerate(names)}


class Crops:
    """Fixed-length crops of the analysed clips: random training batches (every crop start of
    every clip equally likely, a pure function of the generator) and a fixed validation set.

    Args:
        clips: ``(frames, columns)`` float32 arrays.
        crop_frames: frames per crop.

    Raises:
        ValueError: no clip has ``crop_frames`` frames (names ``data.crop_frames``).
    """

    def __init__(self, clips: list[np.ndarray], crop_frames: int):
        self.clips = [torch.from_numpy(c) for c in clips if len(c) >= crop_frames]
        if not self.clips:
            longest = max((len(c) for c in clips), default=0)
            raise ValueError(f"data.crop_frames={crop_frames} is longer than every clip (longest has {longest} frames)")
        self.crop_frames = int(crop_frames)
        spans = torch.tensor([len(c) - crop_frames + 1 for c in self.clips], dtype=torch.float64)
        self.weights = spans / spans.sum()

    def draw(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """``(batch_size, crop_frames, columns)`` random crops."""
        picks = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        out = []
        for k in picks.tolist():
            start = int(torch.randint(0, len(self.clips[k]) - self.crop_frames + 1, (1,), generator=generator))
            out.append(self.clips[k][start : start + self.crop_frames])
        return torch.stack(out)

    def fixed(self, max_crops: int) -> torch.Tensor:
        """Consecutive non-overlapping crops of each clip in turn, round-robin over the clips, at
        most ``max_crops``: ``(crops, crop_frames, columns)``."""
        n = self.crop_frames
        per_clip = [[c[s : s + n] for s in range(0, len(c) - n + 1, n)] for c in self.clips]
        out: list[torch.Tensor] = []
        depth = 0
        while len(out) < max_crops and any(depth < len(p) for p in per_clip):
            out += [p[depth] for p in per_clip if depth < len(p)]
            depth += 1
        return torch.stack(out[:max_crops])


class PGVocoderLearner(Learner):
    """The network of ``spec`` trained on the run's mels with the losses of eq. 7–11.

    The run's ``dataset`` is read at the representation's rate, silence is trimmed as
    ``data.trim_db`` says, and clips are split into train and valid by the hash of their id
    (``data.valid_fraction``); ``data.crop_frames`` frames per crop, ``data.valid_crops`` fixed
    validation crops (null: all).

    Args:
        parts: the run's config, representation (a mel representation, ``log_mel``) and dataset.
        spec: the network's size.
        weights: α₂ and the LFCC count.
        inference_keys: the ``inverter`` keys a resumed run may change.

    Raises:
        ValueError: not a mel representation; ``n_lfcc`` out of range.
    """

    monitor = "loss"
    kind = "inverter"
    fixed_sections = ("inverter", "trains")

    def __init__(self, parts: InverterTrainingParts, spec: NetworkSpec, weights: LossWeights, inference_keys: tuple[str, ...] = ()):
        self.parts = parts
        self.representation = parts.representation
        self.geometry = MelGeometry(parts.representation)
        warp, log_gain = mel_warp(self.geometry.mel_basis, self.geometry.stft.sr)
        self.net = PhaseGradientNet(warp, log_gain, spec)
        self.forward = self.net
        self.weights = weights
        self.dct = dct_matrix(int(weights.n_lfcc), self.geometry.n_bins)
        self.normalizer: Normalizer | None = None
        self.free_keys = frozenset(f"inverter.{k}" for k in inference_keys)
        self.clips: dict[str, Any] = {}

    @property
    def module(self) -> torch.nn.Module:
        return self.net

    def prepare(self) -> None:
        """Read and split the clips, analyse them, fit the per-bin statistics of the input mel
        and of the log-magnitude, Δm and Δn targets on the training clips (§3.1), and cut the
        crops.

        Raises:
            ValueError: an empty split; no clip is ``data.crop_frames`` frames long (named).
        """
        data, g = typed(TrainApp, self.parts.cfg).data, self.geometry
        train, valid, skipped = split_clips(self.parts.dataset, self.representation, data.valid_fraction, data.trim_db)
        self.clips = {"train": len(train), "valid": len(valid), "skipped": skipped}
        train_feats = [analyse_clip(a, self.representation, g) for a in train]
        valid_feats = [analyse_clip(a, self.representation, g) for a in valid]
        stats = {}
        for name, lo, hi in (("mel", 0, g.n_mels), ("logmag", g.n_mels, g.n_mels + g.n_bins),
                             ("dm", g.n_mels + g.n_bins, g.n_mels + 2 * g.n_bins),
                             ("dn", g.n_mels + 2 * g.n_bins, g.n_mels + 3 * g.n_bins)):
            fit = Normalizer.fit(f[:, lo:hi] for f in train_feats)
            stats[name] = (fit.mean, fit.std)
            if name == "mel":
                self.normalizer = fit
        self.net.set_statistics(stats)
        self.train = Crops(train_feats, data.crop_frames)
        self.valid = Crops(valid_feats, data.crop_frames).fixed(data.valid_crops or 1 << 30)

    def skipped(self) -> list[dict]:
        return list(self.clips.get("skipped", []))

    def place(self, placement: Placement) -> None:
        """The network (and the DCT) on the device; its forward through DDP when there are several ranks."""
        self.net.to(placement.device)
        self.dct = self.dct.to(placement.device)
        self.forward = placement.group.wrap(self.net, "forward", placement.device, find_unused=False)

    def optimizers(self) -> list[OptimizerSpec]:
        cfg = self.parts.cfg
        return [OptimizerSpec("model", list(self.net.parameters()), cfg["optimizer"], max_norm=typed(TrainApp, cfg).train.grad_clip)]

    def draw(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """``(batch, crop_frames, n_mels + 4·bins)`` random training crops."""
        return self.train.draw(batch_size, generator)

    def losses(self, batch: torch.Tensor, placement: Placement) -> dict[str, torch.Tensor]:
        """Eq. 7–11 of a batch of crops (:func:`.losses.vocoder_losses`), on the placement's
        device and in its precision (the losses in fp32)."""
        mel, target = split_columns(batch.to(placement.device), self.geometry.n_mels, self.geometry.n_bins)
        with placement.precision.autocast():
            pred = self.forward(mel)
        pred = {k: v.float() for k, v in pred.items()}
        return vocoder_losses(pred, target, self.dct, self.weights)

    def train_step(self, batch: torch.Tensor, ctx: StepContext) -> dict[str, float]:
        terms = self.losses(batch, ctx.placement)
        ctx.update("model", terms["loss"])
        return {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def validate(self, batch_size: int, placement: Placement) -> dict[str, float]:
        """Mean of every loss term over the fixed validation crops (weighted by batch size)."""
        was_training = self.net.training
        self.net.eval()
        totals: dict[str, float] = {}
        for start in range(0, len(self.valid), batch_size):
            batch = self.valid[start : start + batch_size]
            for k, v in self.losses(batch, placement).items():
                totals[k] = totals.get(k, 0.0) + float(v) * len(batch)
        self.net.train(was_training)
        return {k: v / len(self.valid) for k, v in totals.items()}

    def checkpoint_extras(self) -> dict:
        """The analysis the vocoder was trained on (``representation``), the input statistics
        (``normalizer``, also in the weights as buffers), the filterbank, the STFT geometry and
        the power floor."""
        g = self.geometry
        return {
            "representation": {"name": self.parts.cfg["representation"]["name"], **self.representation.config()},
            "normalizer": self.normalizer.state_dict() if self.normalizer is not None else None,
            "mel_basis": torch.from_numpy(g.mel_basis.copy()),
            "stft": {"sr": g.stft.sr, "n_fft": g.stft.n_fft, "hop_length": g.stft.hop_length, "win_length": g.stft.win_length},
            "floor": g.floor,
        }

    def summary(self, metrics: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        return {
            "inverter": self.parts.cfg["inverter"]["name"],
            "units": "loss terms of the vocoder (seed 002 eq. 7-11; log-magnitude in nats, offsets in bins and "
                     "frames), means over the fixed validation crops / the last log_every steps",
            "train_clips": self.clips.get("train"), "valid_clips": self.clips.get("valid"),
        }
