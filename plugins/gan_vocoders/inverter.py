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
from melforge.core.inverter import (
    InverterTrainingParts,
    TrainableInverter,
    signal_length,
)
from melforge.core.stft import StftParams
from melforge.core.validation import check_magnitude
from torch.nn.utils import parametrize

from .learner import GanVocoderLearner
from .setup import GENERATORS, GanSetup


def describe_geometry(stft: StftParams, n_mels: int) -> str:
    """``"sr 22050 Hz, n_fft 1024, hop 256, window 1024, 80 mels"``."""
    return f"sr {stft.sr} Hz, n_fft {stft.n_fft}, hop {stft.hop_length}, window {stft.win_length}, {n_mels} mels"


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
        cfg = state["config"]
        icfg = cfg.get("inverter") or {}
        if cfg.get("trains") != "inverter" or icfg.get("generator") not in GENERATORS or "mel_basis" not in state:
            what = f"inverter {icfg.get('name')}" if cfg.get("trains") == "inverter" else f"a {(cfg.get('backbone') or {}).get('name')} model"
            raise ValueError(
                f"inverter.checkpoint={str(path)!r}: not a GAN vocoder checkpoint (its run trained {what}); "
                "train one with melforge-train experiment=hifigan_tiny"
            )
        mel_basis = state["mel_basis"].numpy().astype(np.float32)
        generator = GanSetup.from_config(icfg).build_generator(mel_basis.shape[0])
        prefix = "generator."
        generator.load_state_dict({k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)})
        generator = fold_weight_norm(generator).eval()
        stft = StftParams(**{k: int(v) for k, v in state["stft"].items()})
        return cls(generator, stft, mel_basis, float(state["floor"]), dict(state["representation"]), str(path))

    def describe(self) -> str:
        return describe_geometry(self.stft, self.mel_basis.shape[0])


class HifiGan(TrainableInverter):
    """A GAN vocoder: HiFi-GAN (Kong et al. 2020) and, by its ``setup``, MelGAN or iSTFTNet.

    Args:
        trained: the loaded generator and its geometry, or ``None`` for one still to be trained.
        setup: what a training run fits (a loaded one's generator is its checkpoint's).
    """

    #: How a trained vocoder inverts; a training run resumes across changes to these keys.
    inference_keys = ("checkpoint",)

    def __init__(self, trained: TrainedGenerator | None, setup: GanSetup):
        self.trained, self.setup = trained, setup

    def learner(self, parts: InverterTrainingParts) -> GanVocoderLearner:
        """A :class:`.learner.GanVocoderLearner` of :attr:`setup` on the run's mels."""
        return GanVocoderLearner(parts, self.setup, self.inference_keys)

    def representation_config(self) -> dict | None:
        """The checkpoint's representation (``None`` before training)."""
        return dict(self.trained.representation) if self.trained is not None else None

    def _require(self) -> TrainedGenerator:
        if self.trained is None:
            raise ValueError(
                f"{self.setup.generator}: no trained generator; set inverter.checkpoint=<run>/checkpoints/last.pt "
                "(written by melforge-train experiment=hifigan_tiny)"
            )
        return self.trained

    def check_geometry(self, mel_basis: np.ndarray | None, stft: StftParams) -> None:
        """Raise unless ``stft`` (and the filterbank ``mel_basis (n_mels, bins)``, when given) are
        the checkpoint's.

        Raises:
            ValueError: names both geometries (and the checkpoint).
        """
        t = self._require()
        n_mels = mel_basis.shape[0] if mel_basis is not None else t.mel_basis.shape[0]
        same = stft == t.stft and (
            mel_basis is None
            or (mel_basis.shape == t.mel_basis.shape and np.allclose(mel_basis, t.mel_basis, rtol=1e-4, atol=1e-7))
        )
        if not same:
            other = "" if mel_basis is None or mel_basis.shape != t.mel_basis.shape else " (another mel filterbank: fmin/fmax differ)"
            raise ValueError(
                f"{self.setup.generator}: the checkpoint {t.source} was trained on mels of {t.describe()}, but these "
                f"have {describe_geometry(stft, n_mels)}{other}; use a vocoder trained on this representation"
            )

    def invert(self, magnitude: np.ndarray, stft: StftParams, *, length: int | None = None) -> np.ndarray:
        """Invert a linear magnitude ``(frames, n_fft // 2 + 1)`` via its mel (``|X|² Bᵀ``): the
        generator sees only the mel, as after sampling.

        Raises:
            ValueError: another geometry than the checkpoint's, or a bad magnitude / length.
        """
        self.check_geometry(None, stft)
        magnitude = check_magnitude(magnitude, stft)
        return self._invert(magnitude, stft, signal_length(stft, magnitude.shape[0], length))

    def invert_mel(self, mel_power, mel_basis, stft, *, length=None) -> np.ndarray:
        """Check the geometry against the checkpoint's, then :meth:`Inverter.invert_mel`.

        Raises:
            ValueError: another geometry (names both); see :meth:`Inverter.invert_mel`.
        """
        self.check_geometry(np.asarray(mel_basis), stft)
        return super().invert_mel(mel_power, mel_basis, stft, length=length)

    def _invert(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        t = self._require()
        mel_power = magnitude**2 @ t.mel_basis.T.astype(np.float64)  # (frames, n_mels)
        return self._invert_mel(mel_power, t.mel_basis, stft, length)

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
        mel = torch.as_tensor(np.asarray(mel_power), dtype=torch.float32) if not torch.is_tensor(mel_power) else mel_power.float()
        return t.generator(torch.log(torch.clamp(mel, min=t.floor))).cpu()


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
) -> HifiGan:
    """A GAN vocoder, trained (``checkpoint``) or to be trained; the keys are
    :class:`.setup.GanSetup`'s (see ``configs/inverter/hifigan.yaml``).

    Raises:
        ValueError, CheckpointError: bad values or checkpoint (named).
    """
    keys = dict(locals())
    keys.pop("checkpoint")
    setup = GanSetup.from_config(keys)
    setup.build_generator(8)  # sizes are checked now, not at the first training step
    trained = TrainedGenerator.load(checkpoint) if checkpoint else None
    return HifiGan(trained, setup)
