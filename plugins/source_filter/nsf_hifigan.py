"""NSF-HiFiGAN: HiFi-GAN's generator (Kong et al. 2020) driven by hn-NSF's sine source (Wang et
al. 2019), the source downsampled to every upsampling stage's rate and added to that stage's
output before its MRF.

This is the vocoder of the open-source singing-synthesis community (the openvpi DiffSinger
vocoder, "NSF-HiFiGAN"), which has no paper of its own; the same idea, a harmonic source fed into
HiFi-GAN's upsampling stages, is what Yoneyama et al. (2023, "Source-Filter HiFi-GAN") and Hono
et al. (2021, "PeriodNet") study. Here the source is :func:`.nsf.sine_source` (F0 and its
harmonics, noise in unvoiced frames) merged by a linear layer and tanh, as in hn-NSF; each
stage's injection is a strided convolution of it (kernel 2r, stride r, where r is the product
of the later stages' rates; a 1×1 convolution at the last stage), as in the openvpi code.
The generator is otherwise :class:`melforge.plugins.gan_vocoders.hifigan.HifiGanGenerator`
(same trunk, LeakyReLU 0.01, 7-tap output convolution, tanh).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from melforge.plugins.gan_vocoders.hifigan import HifiGanSpec, Upsampler, check_mel_input
from melforge.plugins.gan_vocoders.layers import norm_conv1d

from .nsf import row_randoms, sine_source
from .oscillator import frames_to_samples


class SourceDownsampler(torch.nn.Module):
    """``source (batch, 1, samples)`` → ``(batch, channels, samples / ratio)``: a convolution of
    kernel ``2 · ratio`` and stride ``ratio`` on the source padded by ``ratio`` samples (half
    each side), or a 1×1 convolution when ``ratio`` is 1.

    Raises:
        ValueError: ``ratio`` or ``channels`` below 1.
    """

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        if ratio < 1 or channels < 1:
            raise ValueError(f"nsf_hifigan: a source downsampler needs channels ≥ 1 and ratio ≥ 1, got {channels}, {ratio}")
        self.ratio = int(ratio)
        self.conv = torch.nn.Conv1d(1, channels, 2 * ratio if ratio > 1 else 1, stride=ratio)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        r = self.ratio
        if r > 1:
            source = F.pad(source, (r // 2, r - r // 2))
        return self.conv(source)


class NsfHifiGanVocoder(torch.nn.Module):
    """``(log_mel (batch, frames, n_mels), f0 (batch, frames) Hz, voiced (batch, frames),
    seeds (batch,))`` → ``audio (batch, frames · hop)`` in [-1, 1], float32.

    Args:
        n_mels: mel channels; sr: sample rate (Hz); hop: samples per frame.
        spec: the HiFi-GAN generator's sizes (:class:`HifiGanSpec`; its upsampling rates must
            multiply to ``hop``).
        sines: F0 and its harmonics in the sine source (hn-NSF: 8).

    Raises:
        ValueError: the spec's hop differs from ``hop`` (names ``inverter.upsample_rates``) or
            ``sines < 1``.
    """

    def __init__(self, n_mels: int, sr: int, hop: int, spec: HifiGanSpec, sines: int = 8):
        super().__init__()
        if spec.hop != hop:
            raise ValueError(f"nsf_hifigan: inverter.upsample_rates {list(spec.upsample_rates)} multiply to {spec.hop} "
                             f"samples per frame, but the representation's hop_length is {hop}")
        if sines < 1:
            raise ValueError(f"inverter.sines={sines}: expected at least 1")
        self.n_mels, self.sr, self.hop, self.sines = int(n_mels), int(sr), int(hop), int(sines)
        self.trunk = Upsampler(spec, n_mels)
        self.merge = torch.nn.Linear(sines, 1)
        rates = spec.upsample_rates
        self.source_downsamplers = torch.nn.ModuleList(
            SourceDownsampler(c, math.prod(rates[i + 1:])) for i, c in enumerate(self.trunk.stage_channels()))
        self.conv_post = norm_conv1d(self.trunk.out_channels, 1, 7, padding=3)

    def source(self, f0: torch.Tensor, voiced: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """The merged excitation ``(batch, frames · hop)``: ``tanh(Σ_k w_k s_k + b)`` of hn-NSF's
        sine source ``s`` (:func:`.nsf.sine_source`) for ``f0 (batch, frames)`` Hz and ``voiced
        (batch, frames)`` in [0, 1], each row's noise and initial phases from its seed."""
        samples = f0.shape[1] * self.hop
        noise, _, phases = row_randoms(seeds, samples, self.sines, f0.device)
        f0_s, v_s = frames_to_samples(f0.float(), self.hop), frames_to_samples(voiced.float(), self.hop)
        return torch.tanh(self.merge(sine_source(f0_s, v_s, self.sr, self.sines, noise, phases))[..., 0])

    def forward(self, log_mel: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        check_mel_input(log_mel, self.n_mels)
        excitation = self.source(f0, voiced, seeds)[:, None].to(log_mel.dtype)
        injections = [down(excitation) for down in self.source_downsamplers]
        x = self.trunk(log_mel.transpose(1, 2), injections)
        return torch.tanh(self.conv_post(F.leaky_relu(x))).squeeze(1).float()  # float32 under autocast too
