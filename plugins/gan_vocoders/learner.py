"""Training a GAN vocoder (HiFi-GAN, MelGAN, iSTFTNet) as a :class:`melforge.core.learner.Learner`
on the one training loop: aligned (log-mel, audio) crops of the run's clips, the discriminator
updated first, then the generator (HiFi-GAN §2.4, eq. 5-6), and an optional warm-up on the
multi-resolution STFT loss before the discriminators start (Parallel WaveGAN §3.2).

The generator's input is the run's representation's features (``log_mel``: natural-log mel
power). The mel L1 (HiFi-GAN eq. 3) compares the log-mel of the generated audio with the input,
both halved to natural-log mel *magnitude* (nats), the scale of the paper's loss (its mel is of
the STFT magnitude, ours the square root of the mel of the power: the same scale, not the same
numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from melforge.core.clips import split_clips
from melforge.core.inverter import InverterTrainingParts
from melforge.core.learner import Learner, OptimizerSpec, Placement, StepContext

from .adversary import Adversary
from .crops import AlignedCrops
from .layers import count_parameters
from .losses import MultiResolutionStftLoss, mel_l1_loss
from .mel import MelGeometry, TorchLogMel
from .setup import GanSetup


def mel_checkpoint_extras(cfg: Mapping[str, Any], representation, geometry: MelGeometry) -> dict:
    """What a mel vocoder's checkpoint stores beside its weights, for its inverter to refuse
    another geometry: the representation (``{"name", <keys>}``), the filterbank
    ``mel_basis (n_mels, bins)``, the STFT geometry and the power floor."""
    g = geometry
    return {
        "representation": {"name": cfg["representation"]["name"], **representation.config()},
        "mel_basis": torch.from_numpy(g.mel_basis.copy()),
        "stft": {"sr": g.stft.sr, "n_fft": g.stft.n_fft, "hop_length": g.stft.hop_length, "win_length": g.stft.win_length},
        "floor": g.floor,
    }


class GanPair(torch.nn.Module):
    """The trained module: ``generator`` and ``discriminator`` as children (the checkpoint's
    ``model`` holds both; an inverter loads the ``generator.*`` weights)."""

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator

    @staticmethod
    def generator_weights(model_state: Mapping[str, Any]) -> dict:
        """The ``generator.*`` entries of a pair's state dict, keyed as the generator's own."""
        prefix = "generator."
        return {k[len(prefix):]: v for k, v in model_state.items() if k.startswith(prefix)}


class GanVocoderLearner(Learner):
    """A generator and its discriminators trained on the run's mels.

    The run's ``dataset`` is read at the representation's rate, silence trimmed as
    ``data.trim_db`` says, clips split into train and valid by the hash of their id
    (``data.valid_fraction``); ``data.crop_frames`` frames per crop (HiFi-GAN: 32 frames, 8192
    samples at hop 256), ``data.valid_crops`` fixed validation crops (null: all). Both
    optimisers take the ``optimizer`` section (HiFi-GAN: AdamW, β = (0.8, 0.99), lr 2e-4).

    Args:
        parts: the run's config, representation (a mel representation, ``log_mel``) and dataset.
        setup: the generator, discriminators and loss weights.
        inference_keys: the ``inverter`` keys a resumed run may change.

    Raises:
        ValueError: not a mel representation; a generator whose hop differs from the
            representation's (names both).
    """

    monitor = "mel_l1"
    monitor_label = "mel L1"
    kind = "inverter"
    fixed_sections = ("inverter", "trains")

    def __init__(self, parts: InverterTrainingParts, setup: GanSetup, inference_keys: tuple[str, ...] = ()):
        self.parts, self.setup = parts, setup
        self.representation = parts.representation
        self.geometry = MelGeometry(parts.representation)
        generator = setup.build_generator(self.geometry.n_mels)
        if generator.hop != self.geometry.stft.hop_length:
            raise ValueError(
                f"inverter: the {setup.generator} generator upsamples by {generator.hop} samples per frame, but the "
                f"representation's hop_length is {self.geometry.stft.hop_length}; set inverter.upsample_rates to "
                f"factors of {self.geometry.stft.hop_length}"
            )
        self.pair = GanPair(generator, setup.build_discriminator())
        self.generate = self.pair.generator
        self.adversary = Adversary(self.pair.discriminator, setup.adversarial, setup.feature_last)
        g = self.geometry
        self.mel = TorchLogMel(g.stft, g.mel_basis, g.floor)
        self.stft_loss = MultiResolutionStftLoss()
        self.free_keys = frozenset(f"inverter.{k}" for k in inference_keys)
        self.clips: dict[str, Any] = {}

    @property
    def module(self) -> torch.nn.Module:
        return self.pair

    def prepare(self) -> None:
        """Read and split the clips, analyse their log-mels and cut the crops.

        Raises:
            ValueError: an empty split; no clip is ``data.crop_frames`` frames long (named).
        """
        dcfg = self.parts.cfg["data"]
        train, valid, skipped = split_clips(self.parts.dataset, self.representation, float(dcfg["valid_fraction"]), dcfg.get("trim_db"))
        self.clips = {"train": len(train), "valid": len(valid), "skipped": skipped,
                      "train_seconds": sum(len(a) for a in train) / self.geometry.stft.sr}
        hop, crop_frames, cap = self.geometry.stft.hop_length, int(dcfg["crop_frames"]), dcfg.get("valid_crops")
        self.train = AlignedCrops([self.representation.analyze(a) for a in train], train, hop, crop_frames)
        self.valid = AlignedCrops([self.representation.analyze(a) for a in valid], valid, hop, crop_frames).fixed(
            int(cap) if cap else 1 << 30)

    def skipped(self) -> list[dict]:
        return list(self.clips.get("skipped", []))

    def place(self, placement: Placement) -> None:
        """Both networks and the losses' buffers on the device; forward through DDP when there
        are several ranks."""
        self.pair.to(placement.device)
        self.mel.to(placement.device)
        self.stft_loss.to(placement.device)
        self.generate = placement.group.wrap(self.pair.generator, "forward", placement.device, find_unused=False)
        self.adversary.place(placement)

    def optimizers(self) -> list[OptimizerSpec]:
        """``"discriminator"`` then ``"generator"``, both from the ``optimizer`` section; gradient
        norms are measured, not clipped (HiFi-GAN clips none)."""
        opt = self.parts.cfg["optimizer"]
        return [OptimizerSpec("discriminator", list(self.pair.discriminator.parameters()), opt),
                OptimizerSpec("generator", list(self.pair.generator.parameters()), opt)]

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mel (batch, crop_frames, n_mels), audio (batch, crop_frames · hop))`` random crops."""
        return self.train.draw(batch_size, generator)

    def reconstruction(self, fake: torch.Tensor, audio: torch.Tensor, mel: torch.Tensor, stft_weight: float) -> dict[str, torch.Tensor]:
        """The non-adversarial terms of ``fake (batch, samples)`` against the real ``audio`` and
        its input ``mel (batch, frames, n_mels)``: ``mel_l1`` (nats of mel magnitude) and, when
        ``stft_weight > 0``, ``mrstft``."""
        frames = mel.shape[1]
        terms = {"mel_l1": mel_l1_loss(0.5 * self.mel(fake)[:, :frames], 0.5 * mel.float())}
        if stft_weight > 0:
            terms["mrstft"] = self.stft_loss(fake, audio)
        return terms

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], ctx: StepContext) -> dict[str, float]:
        """One step: during the warm-up (``step < adversarial_start``) the generator alone on
        ``warmup_stft_weight · MR-STFT + mel_weight · mel L1``; afterwards the discriminators on
        their adversarial loss of real and detached generated audio, then the generator on
        ``adversarial + feature_weight · feature matching + mel_weight · mel L1 (+ stft_weight · MR-STFT)``."""
        s, device = self.setup, ctx.placement.device
        mel, audio = (t.to(device) for t in batch)
        with ctx.placement.precision.autocast():
            fake = self.generate(mel).float()
        if ctx.step < s.adversarial_start:
            terms = self.reconstruction(fake, audio, mel, s.warmup_stft_weight)
            loss = s.mel_weight * terms["mel_l1"] + s.warmup_stft_weight * terms.get("mrstft", 0.0)
            ctx.update("generator", loss)
            return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        d_loss = self.adversary.update_discriminator(audio, fake, ctx)
        adversarial, fm = self.adversary.generator_terms(audio, fake, ctx)
        terms = self.reconstruction(fake, audio, mel, s.stft_weight)
        loss = adversarial + s.feature_weight * fm + s.mel_weight * terms["mel_l1"] + s.stft_weight * terms.get("mrstft", 0.0)
        ctx.update("generator", loss)
        figures = {"loss": loss, "discriminator": d_loss, "adversarial": adversarial, "feature_matching": fm, **terms}
        return {k: float(v.detach()) for k, v in figures.items()}

    @torch.no_grad()
    def validate(self, batch_size: int, placement: Placement) -> dict[str, float]:
        """Mel L1 (nats of mel magnitude) and MR-STFT of the generator over the fixed validation
        crops (means weighted by batch size)."""
        was_training = self.pair.training
        self.pair.eval()
        mels, audios = self.valid
        totals = {"mel_l1": 0.0, "mrstft": 0.0}
        for start in range(0, len(mels), batch_size):
            mel, audio = mels[start : start + batch_size].to(placement.device), audios[start : start + batch_size].to(placement.device)
            with placement.precision.autocast():
                fake = self.pair.generator(mel).float()
            for k, v in self.reconstruction(fake, audio, mel, 1.0).items():
                totals[k] += float(v) * len(mel)
        self.pair.train(was_training)
        return {k: v / len(mels) for k, v in totals.items()}

    def checkpoint_extras(self) -> dict:
        """The analysis the vocoder was trained on (``representation``), the filterbank, the
        STFT geometry and the power floor."""
        return mel_checkpoint_extras(self.parts.cfg, self.representation, self.geometry)

    def summary(self, metrics: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        return {
            "inverter": self.parts.cfg["inverter"]["name"],
            "units": "mel_l1: mean |Δ log mel magnitude| in nats (HiFi-GAN eq. 3); mrstft: Parallel WaveGAN's "
                     "spectral convergence + log-magnitude L1, mean of 3 resolutions; means over the fixed "
                     "validation crops / the last log_every steps",
            "generator_parameters": count_parameters(self.pair.generator),
            "discriminator_parameters": count_parameters(self.pair.discriminator),
            "train_clips": self.clips.get("train"), "valid_clips": self.clips.get("valid"),
            "train_seconds_of_audio": self.clips.get("train_seconds"),
        }
