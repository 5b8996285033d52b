"""What a GAN vocoder run fits, from the ``inverter`` config section: which generator (and its
size), which discriminators, which adversarial loss and the weights of the other terms, and
when the discriminators start (Parallel WaveGAN's STFT warm-up, Yamamoto et al. 2020 §3.2).

The generator and discriminator choices are tables (:data:`GENERATORS`, :data:`DISCRIMINATORS`),
so HiFi-GAN, MelGAN and iSTFTNet are rows of the same learner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .discriminators import hifigan_discriminators
from .hifigan import SPEC_KEYS, HifiGanGenerator, spec_from_config
from .istftnet import IstftNetGenerator
from .losses import ADVERSARIAL
from .melgan import MelGanDiscriminator, MelGanGenerator

#: The keys that size a generator (``None``: the variant's or the generator's default).
GENERATOR_KEYS = ("variant", "initial_channels", "upsample_rates", "upsample_kernels", "resblock_kernels",
                  "resblock_dilations", "resblock", "residual_layers", "istft_n_fft", "istft_hop")


def _hifigan(keys: Mapping[str, Any], n_mels: int) -> torch.nn.Module:
    sizes = {k: keys.get(k) for k in SPEC_KEYS}
    return HifiGanGenerator(spec_from_config(keys.get("variant") or "v1", sizes), n_mels)


def _melgan(keys: Mapping[str, Any], n_mels: int) -> torch.nn.Module:
    return MelGanGenerator(n_mels, int(keys.get("initial_channels") or 512),
                           tuple(int(r) for r in keys.get("upsample_rates") or (8, 8, 2, 2)),
                           int(keys.get("residual_layers") or 3))


def _istftnet(keys: Mapping[str, Any], n_mels: int) -> torch.nn.Module:
    sizes = {k: keys.get(k) for k in SPEC_KEYS}
    sizes["upsample_rates"] = sizes["upsample_rates"] or (8, 8)  # C8C8I: two ×8 stages, then the iSTFT
    sizes["upsample_kernels"] = sizes["upsample_kernels"] or (16, 16)
    return IstftNetGenerator(spec_from_config(keys.get("variant") or "v1", sizes), n_mels,
                             int(keys.get("istft_n_fft") or 16), int(keys.get("istft_hop") or 4))


def _melgan_discriminator(width: float) -> torch.nn.Module:
    return MelGanDiscriminator(3, width)


def _hifigan_discriminators(width: float) -> torch.nn.Module:
    return hifigan_discriminators(width)


#: ``{name: build(generator keys, n_mels) → module mapping (batch, frames, n_mels) log-mel to (batch, frames · hop) audio}``.
GENERATORS: dict[str, Callable[[Mapping[str, Any], int], torch.nn.Module]] = {
    "hifigan": _hifigan, "melgan": _melgan, "istftnet": _istftnet}
#: ``{name: build(width) → module mapping (batch, samples) audio to a judgement}``.
DISCRIMINATORS: dict[str, Callable[[float], torch.nn.Module]] = {
    "hifigan": _hifigan_discriminators, "melgan": _melgan_discriminator}


@dataclass(frozen=True)
class GanSetup:
    """A GAN vocoder's parts and loss weights.

    Attributes:
        generator: a :data:`GENERATORS` name; ``generator_keys`` its sizes (:data:`GENERATOR_KEYS`).
        discriminator: a :data:`DISCRIMINATORS` name; ``discriminator_width`` the fraction of
            its paper's channels (1; CPU twins use less).
        adversarial: ``"lsgan"`` (HiFi-GAN) or ``"hinge"`` (MelGAN).
        feature_weight: λ_fm (HiFi-GAN 2, MelGAN 10).
        feature_last: whether feature matching includes the score layer (HiFi-GAN yes, MelGAN no).
        mel_weight: λ_mel of the mel L1 (HiFi-GAN 45; MelGAN 0).
        stft_weight: weight of the MR-STFT loss once the discriminators run (0: not computed).
        warmup_stft_weight: its weight during the warm-up.
        adversarial_start: steps of warm-up: before it only the generator trains, on
            ``warmup_stft_weight · MR-STFT + mel_weight · mel L1``; the discriminator
            optimiser is not stepped.

    Raises:
        ValueError: an unknown choice or a negative weight (names the key).
    """

    generator: str = "hifigan"
    generator_keys: dict = field(default_factory=dict)
    discriminator: str = "hifigan"
    discriminator_width: float = 1.0
    adversarial: str = "lsgan"
    feature_weight: float = 2.0
    feature_last: bool = True
    mel_weight: float = 45.0
    stft_weight: float = 0.0
    warmup_stft_weight: float = 1.0
    adversarial_start: int = 0

    def __post_init__(self) -> None:
        for key, table in (("generator", GENERATORS), ("discriminator", DISCRIMINATORS), ("adversarial", ADVERSARIAL)):
            if getattr(self, key) not in table:
                raise ValueError(f"inverter.{key}={getattr(self, key)!r}: expected one of {', '.join(table)}")
        for key in ("feature_weight", "mel_weight", "stft_weight", "warmup_stft_weight", "adversarial_start"):
            if getattr(self, key) < 0:
                raise ValueError(f"inverter.{key}={getattr(self, key)!r}: expected a number >= 0")

    @classmethod
    def from_config(cls, icfg: Mapping[str, Any]) -> "GanSetup":
        """From an ``inverter`` section (keys it lacks take the defaults above)."""
        d = cls()
        return cls(
            generator=str(icfg.get("generator", d.generator)),
            generator_keys={k: icfg.get(k) for k in GENERATOR_KEYS if icfg.get(k) is not None},
            discriminator=str(icfg.get("discriminator", d.discriminator)),
            discriminator_width=float(icfg.get("discriminator_width", d.discriminator_width)),
            adversarial=str(icfg.get("adversarial", d.adversarial)),
            feature_weight=float(icfg.get("feature_weight", d.feature_weight)),
            feature_last=bool(icfg.get("feature_last", d.feature_last)),
            mel_weight=float(icfg.get("mel_weight", d.mel_weight)),
            stft_weight=float(icfg.get("stft_weight", d.stft_weight)),
            warmup_stft_weight=float(icfg.get("warmup_stft_weight", d.warmup_stft_weight)),
            adversarial_start=int(icfg.get("adversarial_start", d.adversarial_start)),
        )

    def build_generator(self, n_mels: int) -> torch.nn.Module:
        """The generator for ``n_mels`` input channels.

        Raises:
            ValueError: bad sizes (named by the generator).
        """
        return GENERATORS[self.generator](self.generator_keys, n_mels)

    def build_discriminator(self) -> torch.nn.Module:
        """The discriminators (one module returning every sub-discriminator's judgement).

        Raises:
            ValueError: a width out of range (named).
        """
        return DISCRIMINATORS[self.discriminator](self.discriminator_width)


#: The keys each registered name changes from HiFi-GAN's defaults (its config file says the same).
PRESETS: dict[str, dict[str, Any]] = {
    "hifigan": {},
    "melgan": {"generator": "melgan", "variant": None, "discriminator": "melgan", "adversarial": "hinge",
               "feature_weight": 10.0, "feature_last": False, "mel_weight": 0.0},
    "istftnet": {"generator": "istftnet", "upsample_rates": [8, 8], "upsample_kernels": [16, 16], "istft_n_fft": 16,
                 "istft_hop": 4},
}
