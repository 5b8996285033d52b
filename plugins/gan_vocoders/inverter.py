"""A trained GAN vocoder (HiFi-GAN, MelGAN, iSTFTNet) as an inverter: mel power → log-mel →
generator → audio, batched in torch.

A vocoder is loaded from a checkpoint that ``melforge-train experiment=hifigan[_tiny]`` (or
``melgan``, ``istftnet``) wrote; it inverts only mels of the geometry it was trained on (sample
rate, FFT size, hop, window, filterbank) and names both geometries otherwise. Without a
checkpoint it can only be trained (:meth:`HifiGan.learner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from melforge.core.checkpoint import load_checkpoint
from melforge.core.inverter import InverterTrainingParts
from melforge.core.mel_vocoder import TrainedMelVocoder, check_vocoder_checkpoint
from melforge.core.stft import StftParams
from torch.nn.utils import parametrize

from .learner import GanPair, GanVocoderLearner
from .setup import GENERATORS, GanSetup


def fold_weight_norm(module: torch.nn.Module) -> torch.nn.Module:
    """Replace every parametrised weight (weight norm) by its value, for faster inference."""
    for m in list(module.modules()):
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module


@dataclass
class TrainedGenerator:
    """A trained generator and the analysis it expects.

    Attributes:
        generator: the generator (eval mode, weight norm folded).
        stft: the STFT geometry of its mels.
        mel_basis: ``(n_mels, bins)`` float32 filterbank of its mels.
        floor: the mel power floor of its features.
        representation: ``{"name", <keys>}`` of the representation it was trained on.
        source: the checkpoint's path (for messages).
    """

    generator: torch.nn.Module
    stft: StftParams
    mel_basis: np.ndarray
    floor: float
    representation: dict
    source: str

    @classmethod
    def load(cls, path: str | Path) -> "TrainedGenerator":
        """Read a checkpoint written by a GAN vocoder training run (weights-only load).

        Raises:
            CheckpointError: missing, unreadable or not plain data (names the file).
            ValueError: a checkpoint of another run (names ``inverter.checkpoint`` and what it trained).
        """
        state = load_checkpoint(path)
        check_vocoder_checkpoint(
            path, state, lambda cfg: cfg.get("trains") == "inverter" and (cfg.get("inverter") or {}).get("generator") in GENERATORS,
            "GAN vocoder", "melforge-train experiment=hifigan_tiny",
        )
        icfg = state["config"]["inverter"]
        mel_basis = state["mel_basis"].numpy().astype(np.float32)
        generator = GanSetup.from_config(icfg).build_generator(mel_basis.shape[0])
        generator.load_state_dict(GanPair.generator_weights(state["model"]))
        generator = fold_weight_norm(generator).eval()
        stft = StftParams(**{k: int(v) for k, v in state["stft"].items()})
        return cls(generator, stft, mel_basis, float(state["floor"]), dict(state["representation"]), str(path))

    def log_mel(self, mel_power: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The generator's input: ``log max(mel_power, floor)`` as float32, same shape
        (``(batch, frames, n_mels)``)."""
        mel = torch.as_tensor(np.asarray(mel_power), dtype=torch.float32) if not torch.is_tensor(mel_power) else mel_power.float()
        return torch.log(torch.clamp(mel, min=self.floor))


class HifiGan(TrainedMelVocoder):
    """A GAN vocoder: HiFi-GAN (Kong et al. 2020) and, by its ``setup``, MelGAN or iSTFTNet.

    Args:
        trained: the loaded generator and its geometry, or ``None`` for one still to be trained.
        setup: what a training run fits (a loaded one's generator is its checkpoint's).
        batch_samples: when inverting a batch, the most output samples (all clips together) one
            generator call makes: the batch runs in chunks of ``max(1, batch_samples // (frames ·
            hop))`` clips. On a CPU the audio-rate activations of a whole batch overflow the cache,
            and one call on 8 clips can cost more than 8 calls on one (benchmarks/RESULTS.md,
            *Vocoder benchmark*); chunks keep them in cache while the early, frame-rate layers still
            run batched. ``None``: the whole batch in one call. The output is the same either way.

    Raises:
        ValueError: ``batch_samples`` below 1.
    """

    #: How a trained vocoder inverts; a training run resumes across changes to these keys.
    inference_keys = ("checkpoint", "batch_samples")

    def __init__(self, trained: TrainedGenerator | None, setup: GanSetup, batch_samples: int | None = None):
        if batch_samples is not None and batch_samples < 1:
            raise ValueError(f"inverter.batch_samples must be >= 1 or null, got {batch_samples}")
        self.trained, self.setup = trained, setup
        self.batch_samples = None if batch_samples is None else int(batch_samples)

    def learner(self, parts: InverterTrainingParts) -> GanVocoderLearner:
        """A :class:`.learner.GanVocoderLearner` of :attr:`setup` on the run's mels."""
        return GanVocoderLearner(parts, self.setup, self.inference_keys)

    @property
    def vocoder_name(self) -> str:
        return self.setup.generator

    def _require(self) -> TrainedGenerator:
        if self.trained is None:
            raise ValueError(
                f"{self.setup.generator}: no trained generator; set inverter.checkpoint=<run>/checkpoints/last.pt "
                "(written by melforge-train experiment=hifigan_tiny)"
            )
        return self.trained

    def _invert_mel(self, mel_power: np.ndarray, mel_basis: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """Generator on ``log max(mel_power, floor)``: ``(length,)`` float32."""
        return self.invert_mel_batch(mel_power[None])[0, :length].numpy()

    @torch.no_grad()
    def invert_mel_batch(self, mel_power: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Invert a batch of mel power spectrograms of the checkpoint's geometry at once (no
        checks: callers validate).

        Args:
            mel_power: ``(batch, frames, n_mels)`` non-negative mel power.

        Returns:
            ``(batch, frames · hop)`` float32 audio (on the CPU).
        """
        t = self._require()
        log_mel = t.log_mel(mel_power)
        return torch.cat([t.generator(chunk) for chunk in torch.split(log_mel, self.clips_per_call(*log_mel.shape[:2]))]).cpu()

    def clips_per_call(self, clips: int, frames: int) -> int:
        """How many of a batch's ``clips`` of ``frames`` frames one generator call inverts
        (``batch_samples``; all of them when it is ``None``)."""
        if self.batch_samples is None:
            return clips
        return min(clips, max(1, self.batch_samples // max(1, frames * self._require().stft.hop_length)))


def build_gan_vocoder(
    checkpoint: str | None = None,
    generator: str = "hifigan",
    variant: str | None = "v1",
    initial_channels: int | None = None,
    upsample_rates: list | None = None,
    upsample_kernels: list | None = None,
    resblock_kernels: list | None = None,
    resblock_dilations: list | None = None,
    resblock: int | None = None,
    residual_layers: int | None = None,
    istft_n_fft: int | None = None,
    istft_hop: int | None = None,
    discriminator: str = "hifigan",
    discriminator_width: float = 1.0,
    adversarial: str = "lsgan",
    feature_weight: float = 2.0,
    feature_last: bool = True,
    mel_weight: float = 45.0,
    stft_weight: float = 0.0,
    warmup_stft_weight: float = 1.0,
    adversarial_start: int = 0,
    batch_samples: int | None = 131072,
) -> HifiGan:
    """A GAN vocoder, trained (``checkpoint``) or to be trained; the keys are
    :class:`.setup.GanSetup`'s (see ``configs/inverter/hifigan.yaml``).

    Raises:
        ValueError, CheckpointError: bad values or checkpoint (named).
    """
    keys = dict(locals())
    keys.pop("checkpoint")
    keys.pop("batch_samples")
    setup = GanSetup.from_config(keys)
    setup.build_generator(8)  # sizes are checked now, not at the first training step
    trained = TrainedGenerator.load(checkpoint) if checkpoint else None
    return HifiGan(trained, setup, batch_samples)
