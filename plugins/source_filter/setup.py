"""What a source-filter vocoder run fits, from the ``inverter`` config section: which vocoder
(DDSP, hn-NSF or NSF-HiFiGAN) and its sizes, the F0 / voicing estimator's sizes, the pyin label
range, the spectral loss, the weights of the estimator's terms and, optionally, discriminators
(a GAN vocoder's: HiFi-GAN's MPD + MSD or MelGAN's) with their losses and an STFT warm-up. The
vocoders are rows of a table (:data:`VOCODERS`), so all are one learner."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from melforge.plugins.gan_vocoders.hifigan import SPEC_KEYS, spec_from_config
from melforge.plugins.gan_vocoders.losses import ADVERSARIAL
from melforge.plugins.gan_vocoders.setup import DISCRIMINATORS

from .ddsp import DdspVocoder
from .estimator import F0Estimator
from .model import SourceFilterModel
from .nsf import NsfVocoder
from .nsf_hifigan import NsfHifiGanVocoder
from .pitch_heads import HEADS, build_head
from .spectral_loss import SPECTRAL_LOSSES

#: The keys that size each vocoder (``None``: the vocoder's default, its paper's size).
VOCODER_KEYS = {
    "ddsp": ("hidden", "mlp_layers", "harmonics", "noise_bands", "reverb_taps"),
    "nsf": ("channels", "blocks", "layers", "sines", "voiced_cutoff", "unvoiced_cutoff"),
    "nsf_hifigan": ("variant", *SPEC_KEYS, "sines"),
}


def _ddsp(keys: Mapping[str, Any], n_mels: int, sr: int, hop: int) -> torch.nn.Module:
    return DdspVocoder(n_mels, sr, hop, **keys)


def _nsf(keys: Mapping[str, Any], n_mels: int, sr: int, hop: int) -> torch.nn.Module:
    return NsfVocoder(n_mels, sr, hop, **keys)


def _nsf_hifigan(keys: Mapping[str, Any], n_mels: int, sr: int, hop: int) -> torch.nn.Module:
    sizes = {k: keys.get(k) for k in SPEC_KEYS}
    spec = spec_from_config(keys.get("variant") or "v1", sizes)
    return NsfHifiGanVocoder(n_mels, sr, hop, spec, int(keys.get("sines") or 8))


#: ``{name: build(keys, n_mels, sr, hop) → module (log_mel, f0, voiced, seeds) → audio}``.
VOCODERS: dict[str, Callable[[Mapping[str, Any], int, int, int], torch.nn.Module]] = {
    "ddsp": _ddsp, "nsf": _nsf, "nsf_hifigan": _nsf_hifigan}
#: Discriminator choices: ``none`` or a GAN vocoder's (:data:`melforge.plugins.gan_vocoders.setup.DISCRIMINATORS`).
DISCRIMINATOR_CHOICES = ("none", *DISCRIMINATORS)


@dataclass(frozen=True)
class SourceFilterSetup:
    """A source-filter vocoder's parts and loss weights.

    Attributes:
        generator: a :data:`VOCODERS` name (``ddsp``, ``nsf`` or ``nsf_hifigan``); ``vocoder_keys`` its sizes
            (:data:`VOCODER_KEYS`).
        estimator_channels, estimator_layers, estimator_kernel: the F0 / voicing estimator's
            1-D stack; estimator_front_channels, estimator_front_layers: its 2-D front end over
            mel bands × frames (0 channels: none; see :class:`.estimator.F0Estimator`);
            estimator_head: its output, ``regression`` (log-F0, L1) or ``bins`` (CREPE's pitch
            bins, ``estimator_bin_cents`` apart; :mod:`.pitch_heads`).
        fmin, fmax: the F0 range (Hz) of the pyin labels and of the estimator.
        pyin_frame: pyin's window (samples).
        spectral_loss: ``ddsp`` (multi-scale, FFT 2048 … 64), ``nsf`` (3 resolutions) or
            ``mrstft`` (Parallel WaveGAN's, auraloss).
        f0_weight: weight of the estimator head's F0 term (voiced frames).
        vuv_weight: weight of its voicing cross-entropy.
        mel_weight: weight of the mel L1 of the teacher-forced audio (HiFi-GAN eq. 3; 0: only
            monitored, as DDSP and hn-NSF train).
        discriminator: ``none`` or a GAN vocoder's discriminators (``hifigan``: MPD + MSD;
            ``melgan``), ``discriminator_width`` the fraction of their paper's channels;
            adversarial: ``lsgan`` or ``hinge``; feature_weight, feature_last: feature matching
            (HiFi-GAN: 2, with the score layer); adversarial_start: steps of warm-up before the
            discriminators start (Parallel WaveGAN §3.2), the vocoder alone on its spectral,
            mel and estimator terms until then.

    Raises:
        ValueError: an unknown choice, a negative weight or a bad F0 range (names the key).
    """

    generator: str = "ddsp"
    vocoder_keys: dict = field(default_factory=dict)
    estimator_channels: int = 64
    estimator_layers: int = 4
    estimator_kernel: int = 5
    estimator_front_channels: int = 0
    estimator_front_layers: int = 3
    estimator_head: str = "regression"
    estimator_bin_cents: float = 20.0
    fmin: float = 50.0
    fmax: float = 600.0
    pyin_frame: int = 1024
    spectral_loss: str = "ddsp"
    f0_weight: float = 1.0
    vuv_weight: float = 1.0
    mel_weight: float = 0.0
    discriminator: str = "none"
    discriminator_width: float = 1.0
    adversarial: str = "lsgan"
    feature_weight: float = 2.0
    feature_last: bool = True
    adversarial_start: int = 0

    def __post_init__(self) -> None:
        for key, table in (("generator", VOCODERS), ("spectral_loss", SPECTRAL_LOSSES), ("estimator_head", HEADS),
                           ("discriminator", DISCRIMINATOR_CHOICES), ("adversarial", ADVERSARIAL)):
            if getattr(self, key) not in table:
                raise ValueError(f"inverter.{key}={getattr(self, key)!r}: expected one of {', '.join(table)}")
        for key in ("f0_weight", "vuv_weight", "mel_weight", "feature_weight", "adversarial_start"):
            if getattr(self, key) < 0:
                raise ValueError(f"inverter.{key}={getattr(self, key)!r}: expected a number >= 0")
        if not 0 < self.fmin < self.fmax:
            raise ValueError(f"inverter.fmin={self.fmin}, inverter.fmax={self.fmax}: expected 0 < fmin < fmax")

    @classmethod
    def from_config(cls, icfg: Mapping[str, Any]) -> "SourceFilterSetup":
        """From an ``inverter`` section (keys it lacks take the defaults above)."""
        d = cls()
        generator = str(icfg.get("generator", d.generator))
        keys = VOCODER_KEYS.get(generator, ())
        return cls(
            generator=generator,
            vocoder_keys={k: icfg[k] for k in keys if icfg.get(k) is not None},
            **{k: type(getattr(d, k))(icfg.get(k, getattr(d, k))) for k in (
                "estimator_channels", "estimator_layers", "estimator_kernel", "estimator_front_channels",
                "estimator_front_layers", "estimator_head", "estimator_bin_cents", "fmin", "fmax", "pyin_frame",
                "spectral_loss", "f0_weight", "vuv_weight", "mel_weight", "discriminator", "discriminator_width",
                "adversarial", "feature_weight", "feature_last", "adversarial_start")},
        )

    def build(self, n_mels: int, sr: int, hop: int) -> torch.nn.Module:
        """The :class:`.model.SourceFilterModel` (estimator + vocoder) for ``n_mels`` channels at
        ``sr`` Hz and ``hop`` samples per frame.

        Raises:
            ValueError: bad sizes (named by the part).
        """
        head = build_head(self.estimator_head, self.fmin, self.fmax, self.estimator_bin_cents)
        estimator = F0Estimator(n_mels, self.estimator_channels, self.estimator_layers, self.estimator_kernel,
                                self.fmin, self.fmax, self.estimator_front_channels, self.estimator_front_layers, head=head)
        return SourceFilterModel(estimator, VOCODERS[self.generator](self.vocoder_keys, n_mels, sr, hop))

    def build_loss(self) -> torch.nn.Module:
        """The spectral loss module (``pred, target (batch, samples) → scalar``)."""
        return SPECTRAL_LOSSES[self.spectral_loss]()

    def build_discriminator(self) -> torch.nn.Module | None:
        """The discriminators (one module returning every sub-discriminator's judgement), or
        ``None`` when ``discriminator`` is ``none``.

        Raises:
            ValueError: a width out of range (named).
        """
        if self.discriminator == "none":
            return None
        return DISCRIMINATORS[self.discriminator](self.discriminator_width)


#: The keys each registered name sets (its config file says the same).
PRESETS: dict[str, dict[str, Any]] = {
    "ddsp": {"generator": "ddsp", "spectral_loss": "ddsp"},
    "nsf": {"generator": "nsf", "spectral_loss": "nsf"},
    "nsf_hifigan": {"generator": "nsf_hifigan", "spectral_loss": "mrstft", "variant": "v1", "mel_weight": 45.0,
                    "discriminator": "hifigan", "estimator_head": "bins"},
}
