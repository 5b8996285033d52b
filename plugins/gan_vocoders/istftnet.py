"""iSTFTNet (Kaneko et al. 2022), C8C8I: HiFi-GAN V1's generator stopped after two upsampling
stages (×8, ×8: 64 samples per frame), whose output convolution predicts the magnitude and the
phase of an STFT with n_fft 16 and hop 4, inverted by ``torch.istft`` (§3, Fig. 1): the last
×4 of the hop is the inverse STFT's.

The output layer is the authors' released one: LeakyReLU, reflection padding of one step on
the left, a 7-tap convolution to ``n_fft + 2`` channels; magnitude ``exp`` of the first
``n_fft/2 + 1``, phase ``π · sin`` of the others.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .hifigan import HifiGanSpec, Upsampler, check_mel_input
from .layers import norm_conv1d


class IstftNetGenerator(torch.nn.Module):
    """Mel → waveform through an inverse STFT.

    Args:
        spec: the HiFi-GAN trunk (C8C8I: V1 with rates (8, 8) and kernels (16, 16)).
        n_mels: mel channels of the input.
        n_fft: FFT size of the output STFT (16).
        hop: its hop (4); the generator's hop is ``hop · Π rates``.

    Raises:
        ValueError: ``hop`` > ``n_fft`` or an odd ``n_fft``.
    """

    def __init__(self, spec: HifiGanSpec, n_mels: int, n_fft: int = 16, hop: int = 4):
        super().__init__()
        if n_fft % 2 or not 0 < hop <= n_fft:
            raise ValueError(f"istftnet: need an even istft_n_fft and 0 < istft_hop <= istft_n_fft, got {n_fft}, {hop}")
        self.n_mels, self.n_fft, self.istft_hop = int(n_mels), int(n_fft), int(hop)
        self.hop = spec.hop * self.istft_hop
        self.trunk = Upsampler(spec, n_mels)
        self.conv_post = norm_conv1d(self.trunk.out_channels, n_fft + 2, 7, padding=3)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def spectrum(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mel: (batch, frames, n_mels)`` → magnitude and phase ``(batch, n_fft/2 + 1, frames · Π rates + 1)``."""
        check_mel_input(mel, self.n_mels)
        x = F.leaky_relu(self.trunk(mel.transpose(1, 2)))
        x = self.conv_post(F.pad(x, (1, 0), mode="reflect"))
        bins = self.n_fft // 2 + 1
        return torch.exp(x[:, :bins]), math.pi * torch.sin(x[:, bins:])

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``mel: (batch, frames, n_mels)`` log-mel → ``(batch, frames · hop)`` audio.

        Raises:
            ValueError: ``mel`` is not ``(batch, frames, n_mels)``.
        """
        magnitude, phase = self.spectrum(mel)
        spec = torch.polar(magnitude.float(), phase.float())
        audio = torch.istft(spec, self.n_fft, self.istft_hop, self.n_fft, self.window, center=True)
        return audio[:, : mel.shape[1] * self.hop]
