"""HiFi-GAN's discriminators (Kong et al. 2020, §2.2-2.3, Fig. 2): the multi-period
discriminator (MPD, periods 2, 3, 5, 7, 11) and the multi-scale discriminator (MSD, 3 scales:
raw, ×2 and ×4 average-pooled audio; spectral norm on the first, weight norm on the others).

Every discriminator maps ``audio: (batch, samples)`` to a list of ``(score, features)``, one per
sub-discriminator: ``score (batch, n)`` (one realness logit per output position) and the
activations after every layer (what feature matching compares).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .layers import norm_conv1d, weight_norm

#: Periods of the MPD (§2.2: primes, to avoid overlap).
PERIODS = (2, 3, 5, 7, 11)
#: LeakyReLU slope of the discriminators (the paper's repository: 0.1).
SLOPE = 0.1

Judgement = list[tuple[torch.Tensor, list[torch.Tensor]]]


def judge(
    convs: torch.nn.ModuleList, conv_post: torch.nn.Module, x: torch.Tensor, slope: float = SLOPE,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A sub-discriminator's convolutions (each followed by a LeakyReLU of ``slope``) and its output
    convolution on ``x: (batch, 1, ...)``: ``(score (batch, n), the activations after every layer)``."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), slope)
        features.append(x)
    x = conv_post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(torch.nn.Module):
    """One sub-discriminator of the MPD: the audio reshaped to ``(samples / p, p)`` (reflect-
    padded to a multiple of ``p``) and 2-D convolutions with ``(k, 1)`` kernels, channels
    1 → 32 → 128 → 512 → 1024 → 1024 → 1, strides 3 on the first four.

    Args:
        period: p.
        width: the fraction of the paper's channels (1: the paper's; smaller for CPU twins).
    """

    def __init__(self, period: int, width: float = 1.0):
        super().__init__()
        self.period = int(period)
        chans = (1, *(scaled(c, width) for c in (32, 128, 512, 1024)))
        convs = [torch.nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)) for a, b in zip(chans, chans[1:])]
        convs.append(torch.nn.Conv2d(chans[-1], chans[-1], (5, 1), 1, padding=(2, 0)))
        self.convs = torch.nn.ModuleList(weight_norm(c) for c in convs)
        self.conv_post = weight_norm(torch.nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``audio: (batch, samples)`` → ``(score (batch, n), features)``."""
        b, t = audio.shape
        pad = (-t) % self.period
        x = F.pad(audio[:, None], (0, pad), mode="reflect") if pad else audio[:, None]
        x = x.view(b, 1, (t + pad) // self.period, self.period)
        return judge(self.convs, self.conv_post, x)


class ScaleDiscriminator(torch.nn.Module):
    """One sub-discriminator of the MSD (MelGAN's, with HiFi-GAN's widths): grouped strided
    1-D convolutions, channels 1 → 128 → 128 → 256 → 512 → 1024 → 1024 → 1024 → 1.

    Args:
        norm: ``"spectral"`` (the first scale) or ``"weight"``.
        width: the fraction of the paper's channels (1: the paper's; smaller for CPU twins).
    """

    def __init__(self, norm: str = "weight", width: float = 1.0):
        super().__init__()
        c = {n: scaled(n, width) for n in (128, 256, 512, 1024)}
        layers = [(1, c[128], 15, 1, 1, 7), (c[128], c[128], 41, 2, 4, 20), (c[128], c[256], 41, 2, 16, 20),
                  (c[256], c[512], 41, 4, 16, 20), (c[512], c[1024], 41, 4, 16, 20), (c[1024], c[1024], 41, 1, 16, 20),
                  (c[1024], c[1024], 5, 1, 1, 2)]  # (in, out, kernel, stride, groups, padding)
        self.convs = torch.nn.ModuleList(
            norm_conv1d(a, b, k, s, groups=g, padding=p, norm=norm) for a, b, k, s, g, p in layers
        )
        self.conv_post = norm_conv1d(c[1024], 1, 3, 1, padding=1, norm=norm)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``audio: (batch, samples)`` → ``(score (batch, n), features)``."""
        x = audio[:, None]
        return judge(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(torch.nn.Module):
    """The MPD: one :class:`PeriodDiscriminator` per period."""

    def __init__(self, periods: tuple[int, ...] = PERIODS, width: float = 1.0):
        super().__init__()
        self.discriminators = torch.nn.ModuleList(PeriodDiscriminator(p, width) for p in periods)

    def forward(self, audio: torch.Tensor) -> Judgement:
        """``audio: (batch, samples)`` → one ``(score, features)`` per period."""
        return [d(audio) for d in self.discriminators]


class MultiScaleDiscriminator(torch.nn.Module):
    """The MSD: :class:`ScaleDiscriminator` on the audio, then on it average-pooled (kernel 4,
    stride 2, padding 2) once and twice; spectral norm on the first scale."""

    def __init__(self, scales: int = 3, width: float = 1.0):
        super().__init__()
        self.discriminators = torch.nn.ModuleList(
            ScaleDiscriminator("spectral" if k == 0 else "weight", width) for k in range(scales)
        )
        self.pool = torch.nn.AvgPool1d(4, 2, padding=2)

    def forward(self, audio: torch.Tensor) -> Judgement:
        """``audio: (batch, samples)`` → one ``(score, features)`` per scale."""
        out = []
        x = audio
        for k, d in enumerate(self.discriminators):
            if k:
                x = self.pool(x[:, None])[:, 0]
            out.append(d(x))
        return out


class Discriminators(torch.nn.Module):
    """Several discriminators judged together (HiFi-GAN: MPD + MSD): their sub-discriminators'
    judgements, concatenated in order."""

    def __init__(self, parts: list[torch.nn.Module]):
        super().__init__()
        self.parts = torch.nn.ModuleList(parts)

    def forward(self, audio: torch.Tensor) -> Judgement:
        """``audio: (batch, samples)`` → every sub-discriminator's ``(score, features)``."""
        return [j for part in self.parts for j in part(audio)]


def hifigan_discriminators(width: float = 1.0) -> Discriminators:
    """HiFi-GAN's MPD and MSD (``width``: the fraction of the paper's channels)."""
    return Discriminators([MultiPeriodDiscriminator(width=width), MultiScaleDiscriminator(width=width)])


def scaled(channels: int, width: float) -> int:
    """``channels · width`` rounded down to a multiple of 16 (the MSD's largest group count), at
    least 16; ``width = 1`` leaves the paper's channels.

    Raises:
        ValueError: ``width`` not in (0, 1].
    """
    if not 0 < width <= 1:
        raise ValueError(f"inverter.discriminator_width={width!r}: expected a number in (0, 1]")
    return max(16, int(channels * width) // 16 * 16)
