"""Training a source-filter vocoder (DDSP, hn-NSF, NSF-HiFiGAN) as a
:class:`melforge.core.learner.Learner` on the one training loop: aligned (log-mel, pyin label,
audio) crops of the run's clips, one optimiser for the vocoder and its F0 / voicing estimator
together, the vocoder's spectral loss (and optionally its mel L1) plus the estimator's terms;
with discriminators, also a GAN vocoder's adversarial step (:class:`.adversary.Adversary`,
the discriminators updated first) once the STFT warm-up is over.

The vocoder follows the pyin labels in training (teacher forcing, as DDSP follows CREPE's F0);
validation inverts the way an inverter does, with the estimator's F0 and voicing, and also
scores the vocoder on the labels (``spectral_labels``) so the two errors can be told apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from melforge.core.clips import split_clips
from melforge.core.inverter import InverterTrainingParts
from melforge.core.learner import Learner, OptimizerSpec, Placement, StepContext
from melforge.plugins.gan_vocoders.adversary import Adversary
from melforge.plugins.gan_vocoders.crops import AlignedCrops
from melforge.plugins.gan_vocoders.layers import count_parameters
from melforge.plugins.gan_vocoders.learner import GanPair, mel_checkpoint_extras
from melforge.plugins.gan_vocoders.losses import mel_l1_loss
from melforge.plugins.gan_vocoders.mel import MelGeometry, TorchLogMel

from .pitch import cached_pyin_labels, f0_figures
from .setup import SourceFilterSetup


def labelled_rows(mels: list[np.ndarray], labels: list[np.ndarray]) -> list[np.ndarray]:
    """Each clip's ``(frames, n_mels + 2)`` rows ``[log-mel, f0 Hz, voiced]`` (the labels
    travel with the mel through :class:`AlignedCrops`), cut to the shorter of the two."""
    rows = []
    for m, lab in zip(mels, labels):
        n = min(len(m), len(lab))
        rows.append(np.concatenate([m[:n], lab[:n]], axis=1).astype(np.float32))
    return rows


class SourceFilterLearner(Learner):
    """A source-filter vocoder and its F0 / voicing estimator trained on the run's mels.

    The run's ``dataset`` is read at the representation's rate, trimmed and split as a GAN
    vocoder's (``data.trim_db``, ``data.valid_fraction``, ``data.crop_frames``,
    ``data.valid_crops``); pyin labels every clip once (cached under ``$MELFORGE_CACHE/pyin``).
    One optimiser (the ``optimizer`` section; DDSP and NSF: Adam) updates both networks on
    ``spectral + f0_weight · f0_l1 + vuv_weight · vuv_bce + mel_weight · mel_l1``. With
    discriminators (``inverter.discriminator``), the trained module is a
    :class:`melforge.plugins.gan_vocoders.learner.GanPair` (``generator``: the source-filter
    model), a second optimiser of the same section, ``"discriminator"``, steps first, and from
    step ``adversarial_start`` on the model's loss adds ``adversarial + feature_weight ·
    feature matching``.

    Args:
        parts: the run's config, representation (a mel representation, ``log_mel``) and dataset.
        setup: the vocoder, estimator and loss weights.
        inference_keys: the ``inverter`` keys a resumed run may change.

    Raises:
        ValueError: not a mel representation; bad sizes (named).
    """

    monitor = "mel_l1"
    monitor_label = "mel L1"
    kind = "inverter"
    fixed_sections = ("inverter", "trains")

    def __init__(self, parts: InverterTrainingParts, setup: SourceFilterSetup, inference_keys: tuple[str, ...] = ()):
        self.parts, self.setup = parts, setup
        self.representation = parts.representation
        self.geometry = g = MelGeometry(parts.representation)
        self.model = setup.build(g.n_mels, g.stft.sr, g.stft.hop_length)
        self.forward = self.model.teacher_forced
        discriminator = setup.build_discriminator()
        self.adversary = None if discriminator is None else Adversary(discriminator, setup.adversarial, setup.feature_last)
        self.trained = self.model if discriminator is None else GanPair(self.model, discriminator)
        self.mel = TorchLogMel(g.stft, g.mel_basis, g.floor)
        self.loss = setup.build_loss()
        self.free_keys = frozenset(f"inverter.{k}" for k in inference_keys)
        self.clips: dict[str, Any] = {}

    @property
    def module(self) -> torch.nn.Module:
        return self.trained

    def prepare(self) -> None:
        """Read and split the clips, analyse their log-mels, label them with pyin and cut the crops.

        Raises:
            ValueError: an empty split; no clip is ``data.crop_frames`` frames long (named).
        """
        dcfg, s, stft = self.parts.cfg["data"], self.setup, self.geometry.stft
        train, valid, skipped = split_clips(self.parts.dataset, self.representation, float(dcfg["valid_fraction"]), dcfg.get("trim_db"))
        self.clips = {"train": len(train), "valid": len(valid), "skipped": skipped, "train_seconds": sum(len(a) for a in train) / stft.sr}
        crop_frames, cap = int(dcfg["crop_frames"]), dcfg.get("valid_crops")

        def rows(audios):
            labels = cached_pyin_labels(audios, stft.sr, stft.hop_length, s.pyin_frame, s.fmin, s.fmax)
            return labelled_rows([self.representation.analyze(a) for a in audios], labels)

        self.train = AlignedCrops(rows(train), train, stft.hop_length, crop_frames)
        self.valid = AlignedCrops(rows(valid), valid, stft.hop_length, crop_frames).fixed(int(cap) if cap else 1 << 30)

    def skipped(self) -> list[dict]:
        return list(self.clips.get("skipped", []))

    def place(self, placement: Placement) -> None:
        """The networks and the losses' buffers on the device; the training pass through DDP
        when there are several ranks."""
        self.model.to(placement.device)
        self.mel.to(placement.device)
        self.loss.to(placement.device)
        self.forward = placement.group.wrap(self.model, "teacher_forced", placement.device, find_unused=False)
        if self.adversary is not None:
            self.adversary.place(placement)

    def optimizers(self) -> list[OptimizerSpec]:
        """``"model"``, over the vocoder and the estimator, after ``"discriminator"`` when there are
        discriminators; both from the ``optimizer`` section (norms measured, not clipped)."""
        opt = self.parts.cfg["optimizer"]
        model = [OptimizerSpec("model", list(self.model.parameters()), opt)]
        if self.adversary is None:
            return model
        return [OptimizerSpec(self.adversary.optimizer, list(self.adversary.discriminator.parameters()), opt), *model]

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rows (batch, crop_frames, n_mels + 2), audio (batch, crop_frames · hop), seeds (batch,))``:
        random crops and each row's noise seed, all from ``generator``."""
        rows, audio = self.train.draw(batch_size, generator)
        return rows, audio, torch.randint(0, 1 << 62, (batch_size,), generator=generator)

    def split(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``rows (batch, frames, n_mels + 2)`` → ``(log_mel, f0 Hz, voiced)``."""
        n = self.geometry.n_mels
        return rows[..., :n], rows[..., n], rows[..., n + 1]

    def train_step(self, batch, ctx: StepContext) -> dict[str, float]:
        """One step on ``spectral + f0_weight · f0_term + vuv_weight · vuv_bce + mel_weight ·
        mel_l1`` (the F0 term is the estimator head's: ``f0_l1`` or ``f0_ce``; ``mel_l1`` in nats
        of mel magnitude, always reported), the vocoder following the labels. With discriminators
        and ``step ≥ adversarial_start``, they step first on real and detached generated audio,
        and the model's loss adds ``adversarial + feature_weight · feature_matching``."""
        s, device = self.setup, ctx.placement.device
        rows, audio, seeds = batch
        audio = audio.to(device)
        mel, f0, voiced = self.split(rows.to(device))
        with ctx.placement.precision.autocast():
            fake, y = self.forward(mel, f0, voiced, seeds)
        fake = fake.float()
        adversarial = self.adversary is not None and ctx.step >= s.adversarial_start
        terms = {"discriminator": self.adversary.update_discriminator(audio, fake, ctx)} if adversarial else {}
        estimator = self.model.estimator
        terms.update(spectral=self.loss(fake, audio), **estimator.losses(y, f0, voiced))
        with torch.set_grad_enabled(s.mel_weight > 0):  # otherwise only monitored
            terms["mel_l1"] = mel_l1_loss(0.5 * self.mel(fake)[:, : mel.shape[1]], 0.5 * mel.float())
        loss = (terms["spectral"] + s.f0_weight * terms[estimator.head.loss_name] + s.vuv_weight * terms["vuv_bce"]
                + s.mel_weight * terms["mel_l1"])
        if adversarial:
            terms["adversarial"], terms["feature_matching"] = self.adversary.generator_terms(audio, fake, ctx)
            loss = loss + terms["adversarial"] + s.feature_weight * terms["feature_matching"]
        ctx.update("model", loss)
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    @torch.no_grad()
    def validate(self, batch_size: int, placement: Placement) -> dict[str, float]:
        """Over the fixed validation crops, inverting from the mel alone (the estimator's F0 and
        voicing, noise seed 0): ``mel_l1`` (nats of mel magnitude) and ``spectral``; the vocoder
        on the labels: ``spectral_labels``; the estimator against pyin: ``f0_cents`` (median
        |cents| on voiced frames), ``f0_cents_mean`` and ``vuv_accuracy``."""
        was_training = self.model.training
        self.model.eval()
        rows_all, audios = self.valid
        totals = {"mel_l1": 0.0, "spectral": 0.0, "spectral_labels": 0.0}
        estimates = []
        for start in range(0, len(rows_all), batch_size):
            rows, audio = rows_all[start : start + batch_size].to(placement.device), audios[start : start + batch_size].to(placement.device)
            mel, f0, voiced = self.split(rows)
            seeds = torch.zeros(len(rows), dtype=torch.int64)
            with placement.precision.autocast():
                est_f0, prob = self.model.estimate(mel)
                fake = self.model.vocoder(mel, est_f0.float(), (prob > 0.5).to(mel.dtype), seeds).float()
                oracle = self.model.vocoder(mel, f0, voiced, seeds).float()
            frames = mel.shape[1]
            figures = {"mel_l1": mel_l1_loss(0.5 * self.mel(fake)[:, :frames], 0.5 * mel.float()),
                       "spectral": self.loss(fake, audio), "spectral_labels": self.loss(oracle, audio)}
            for k, v in figures.items():
                totals[k] += float(v) * len(rows)
            estimates.append(torch.stack([est_f0.float(), prob.float(), f0, voiced], dim=-1).cpu())
        self.model.train(was_training)
        e = torch.cat(estimates).numpy()
        return {**{k: v / len(rows_all) for k, v in totals.items()}, **f0_figures(e[..., 0], e[..., 1], e[..., 2], e[..., 3])}

    def checkpoint_extras(self) -> dict:
        """The analysis the vocoder was trained on, its filterbank, STFT geometry and power floor."""
        return mel_checkpoint_extras(self.parts.cfg, self.representation, self.geometry)

    def summary(self, metrics: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        return {
            "inverter": self.parts.cfg["inverter"]["name"],
            "units": "mel_l1: mean |Δ log mel magnitude| in nats, inverting from the mel alone; spectral: the "
                     f"{self.setup.spectral_loss} spectral loss (spectral_labels: the vocoder on the pyin labels); "
                     "f0_cents: median |cents| of the estimator on pyin-voiced frames (f0_cents_mean: the mean); "
                     "vuv_accuracy: share of frames whose voicing matches pyin's",
            "vocoder_parameters": count_parameters(self.model.vocoder),
            "estimator_parameters": count_parameters(self.model.estimator),
            "discriminator_parameters": count_parameters(self.adversary.discriminator) if self.adversary else 0,
            "train_clips": self.clips.get("train"), "valid_clips": self.clips.get("valid"),
            "train_seconds_of_audio": self.clips.get("train_seconds"),
        }
