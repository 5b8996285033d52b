"""MelGAN (Kumar et al. 2019, §2, Fig. 1, Appendix A): the generator (transposed convolutions
upsampling by 8, 8, 2, 2, each followed by a residual stack of dilations 1, 3, 9; weight norm;
reflection padding) and the multi-scale window-based discriminator (3 scales of the same
architecture on raw, ×2 and ×4 average-pooled audio; grouped strided convolutions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .discriminators import judge
from .layers import weight_norm

#: LeakyReLU slope of MelGAN (§2.1, Appendix A: 0.2).
SLOPE = 0.2


class ResidualStack(torch.nn.Module):
    """One residual block per dilation 3^j (§2.1.3): ``x ↦ conv₁(x) + conv₁(lrelu(conv₃,d(lrelu(x))))``
    with reflection padding, lengths kept.

    Args:
        channels: input and output channels.
        layers: blocks (3: dilations 1, 3, 9).
    """

    def __init__(self, channels: int, layers: int = 3):
        super().__init__()
        self.dilations = [3**j for j in range(layers)]
        self.dilated = torch.nn.ModuleList(weight_norm(torch.nn.Conv1d(channels, channels, 3, dilation=d)) for d in self.dilations)
        self.pointwise = torch.nn.ModuleList(weight_norm(torch.nn.Conv1d(channels, channels, 1)) for _ in self.dilations)
        self.shortcut = torch.nn.ModuleList(weight_norm(torch.nn.Conv1d(channels, channels, 1)) for _ in self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, channels, samples)`` → the same shape."""
        for d, conv, point, short in zip(self.dilations, self.dilated, self.pointwise, self.shortcut):
            y = conv(F.pad(F.leaky_relu(x, SLOPE), (d, d), mode="reflect"))
            x = short(x) + point(F.leaky_relu(y, SLOPE))
        return x


class MelGanGenerator(torch.nn.Module):
    """Mel → waveform (Table of Appendix A): 7-tap convolution to ``initial_channels`` (512),
    then per rate a transposed convolution (kernel 2r, stride r) halving the channels and a
    :class:`ResidualStack`, then a 7-tap convolution to one channel and tanh.

    Args:
        n_mels: mel channels of the input.
        initial_channels: channels after the input convolution (512 = 16 · ngf 32).
        upsample_rates: the strides (8, 8, 2, 2: hop 256); each even.
        residual_layers: dilated blocks per residual stack (3).

    Raises:
        ValueError: an odd rate, or channels not divisible by 2^(number of rates).
    """

    def __init__(self, n_mels: int, initial_channels: int = 512, upsample_rates: tuple[int, ...] = (8, 8, 2, 2), residual_layers: int = 3):
        super().__init__()
        if any(r % 2 for r in upsample_rates) or initial_channels % (1 << len(upsample_rates)):
            raise ValueError(f"melgan: needs even upsample_rates and initial_channels divisible by 2^{len(upsample_rates)}, "
                             f"got {tuple(upsample_rates)} and {initial_channels}")
        self.n_mels, self.hop = int(n_mels), 1
        self.conv_pre = weight_norm(torch.nn.Conv1d(n_mels, initial_channels, 7))
        self.ups, self.stacks = torch.nn.ModuleList(), torch.nn.ModuleList()
        c = initial_channels
        for r in upsample_rates:
            self.ups.append(weight_norm(torch.nn.ConvTranspose1d(c, c // 2, 2 * r, r, padding=r // 2)))
            self.stacks.append(ResidualStack(c // 2, residual_layers))
            c //= 2
            self.hop *= r
        self.conv_post = weight_norm(torch.nn.Conv1d(c, 1, 7))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``mel: (batch, frames, n_mels)`` log-mel → ``(batch, frames · hop)`` audio in [-1, 1].

        Raises:
            ValueError: ``mel`` is not ``(batch, frames, n_mels)``.
        """
        from .hifigan import check_mel_input  # deferred: keeps melgan importable on its own

        check_mel_input(mel, self.n_mels)
        x = self.conv_pre(F.pad(mel.transpose(1, 2), (3, 3), mode="reflect"))
        for up, stack in zip(self.ups, self.stacks):
            x = stack(up(F.leaky_relu(x, SLOPE)))
        x = self.conv_post(F.pad(F.leaky_relu(x, SLOPE), (3, 3), mode="reflect"))
        return torch.tanh(x).squeeze(1)


class WindowDiscriminator(torch.nn.Module):
    """One scale of MelGAN's discriminator (Appendix A, Fig. 1b): a 15-tap convolution of
    ``ndf`` (16) channels, 4 grouped convolutions (kernel 41, stride 4, channels ×4 up to 1024,
    groups = input channels / 4), a 5-tap and a 3-tap (score) convolution; weight norm.

    Args:
        width: the fraction of the paper's channels (a power of 2 ≤ 1 keeps the groups whole).
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        ndf, cap = max(4, int(16 * width)), max(16, int(1024 * width))
        convs = [torch.nn.Conv1d(1, ndf, 15, padding=7, padding_mode="reflect")]
        nf = ndf
        for _ in range(4):
            prev, nf = nf, min(nf * 4, cap)
            convs.append(torch.nn.Conv1d(prev, nf, 41, 4, padding=20, groups=prev // 4))
        convs.append(torch.nn.Conv1d(nf, min(nf * 2, cap), 5, padding=2))
        self.convs = torch.nn.ModuleList(weight_norm(c) for c in convs)
        self.conv_post = weight_norm(torch.nn.Conv1d(min(nf * 2, cap), 1, 3, padding=1))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``audio: (batch, samples)`` → ``(score (batch, n), features)``."""
        x = audio[:, None]
        return judge(self.convs, self.conv_post, x, SLOPE)  # MelGAN's slope, 0.2


class MelGanDiscriminator(torch.nn.Module):
    """Three :class:`WindowDiscriminator` on the audio and on it average-pooled (kernel 4,
    stride 2, padding 1, padding not counted) once and twice (§2.2)."""

    def __init__(self, scales: int = 3, width: float = 1.0):
        super().__init__()
        self.discriminators = torch.nn.ModuleList(WindowDiscriminator(width) for _ in range(scales))
        self.pool = torch.nn.AvgPool1d(4, 2, padding=1, count_include_pad=False)

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """``audio: (batch, samples)`` → one ``(score, features)`` per scale."""
        out, x = [], audio
        for k, d in enumerate(self.discriminators):
            if k:
                x = self.pool(x[:, None])[:, 0]
            out.append(d(x))
        return out
