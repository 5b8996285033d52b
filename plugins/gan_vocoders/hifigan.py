"""HiFi-GAN's generator (Kong et al. 2020, §2.1, Fig. 1, Table 5 / Appendix A): transposed
convolutions upsample the mel by the hop, each followed by a multi-receptive-field fusion (MRF)
module, the mean of residual blocks with different kernels and dilations.

Variants of Table 5 (h_u: initial channels, k_u: upsampling kernels, k_r: residual kernels,
D_r: dilations per residual block; upsampling rates k_u / 2):

- V1: h_u 512, k_u [16, 16, 4, 4], k_r [3, 7, 11], D_r [[1, 3, 5]] × 3 (ResBlock1), 13.92 M
- V2: h_u 128, the rest as V1, 0.92 M
- V3: h_u 256, k_u [16, 16, 8], k_r [3, 5, 7], D_r [[1, 2], [2, 6], [3, 12]] (ResBlock2), 1.46 M
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .layers import norm_conv1d, same_padding, weight_norm

#: LeakyReLU slope inside the generator (the paper's repository: 0.1).
SLOPE = 0.1


@dataclass(frozen=True)
class HifiGanSpec:
    """A generator's size (Table 5).

    Attributes:
        initial_channels: h_u, channels after the input convolution (halved by every upsampling).
        upsample_rates: the stride of each transposed convolution (their product is the hop).
        upsample_kernels: k_u, the kernel of each transposed convolution.
        resblock_kernels: k_r, one residual block per kernel in every MRF.
        resblock_dilations: D_r, the dilations of each residual block (one list per kernel).
        resblock: 1 (two convolutions per dilation, V1/V2) or 2 (one per dilation, V3).

    Raises:
        ValueError: mismatched list lengths, an odd upsampling kernel shorter than its rate,
            or ``resblock`` not 1 or 2.
    """

    initial_channels: int = 512
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernels: tuple[int, ...] = (16, 16, 4, 4)
    resblock_kernels: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    resblock: int = 1

    def __post_init__(self) -> None:
        if len(self.upsample_rates) != len(self.upsample_kernels):
            raise ValueError(f"hifigan: upsample_rates {self.upsample_rates} and upsample_kernels {self.upsample_kernels} differ in length")
        if len(self.resblock_kernels) != len(self.resblock_dilations):
            raise ValueError(f"hifigan: resblock_kernels {self.resblock_kernels} and resblock_dilations {self.resblock_dilations} differ in length")
        if any(k < r or (k - r) % 2 for k, r in zip(self.upsample_kernels, self.upsample_rates)):
            raise ValueError(f"hifigan: every upsampling kernel must be ≥ its rate with an even difference, got "
                             f"kernels {self.upsample_kernels}, rates {self.upsample_rates}")
        if self.resblock not in (1, 2):
            raise ValueError(f"hifigan: resblock must be 1 or 2, got {self.resblock}")
        if self.initial_channels % (1 << len(self.upsample_rates)):
            raise ValueError(f"hifigan: initial_channels {self.initial_channels} must be divisible by 2^{len(self.upsample_rates)}")

    @property
    def hop(self) -> int:
        """Samples per input frame (the product of the upsampling rates)."""
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out


#: The config keys that size a HiFi-GAN trunk (:class:`HifiGanSpec`'s fields, Table 5).
SPEC_KEYS: tuple[str, ...] = tuple(HifiGanSpec.__dataclass_fields__)

#: Table 5's variants.
VARIANTS: dict[str, HifiGanSpec] = {
    "v1": HifiGanSpec(),
    "v2": HifiGanSpec(initial_channels=128),
    "v3": HifiGanSpec(256, (8, 8, 4), (16, 16, 8), (3, 5, 7), ((1, 2), (2, 6), (3, 12)), 2),
}


class ResBlock(torch.nn.Module):
    """One residual block of an MRF: for every dilation d, ``x += conv(lrelu(x))`` (ResBlock2,
    V3) or ``x += conv₁(lrelu(conv_d(lrelu(x))))`` (ResBlock1, V1/V2), lengths kept.

    Args:
        channels: input and output channels.
        kernel: k_r.
        dilations: D_r.
        kind: 1 or 2.
    """

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...], kind: int):
        super().__init__()
        self.dilated = torch.nn.ModuleList(
            norm_conv1d(channels, channels, kernel, dilation=d, padding=same_padding(kernel, d)) for d in dilations
        )
        self.plain = torch.nn.ModuleList(
            norm_conv1d(channels, channels, kernel, padding=same_padding(kernel)) for _ in dilations
        ) if kind == 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, channels, samples)`` → the same shape."""
        for k, conv in enumerate(self.dilated):
            y = conv(F.leaky_relu(x, SLOPE))
            if self.plain is not None:
                y = self.plain[k](F.leaky_relu(y, SLOPE))
            x = x + y
        return x


class Upsampler(torch.nn.Module):
    """HiFi-GAN's upsampling trunk: the transposed convolutions, each followed by its MRF
    (the mean of one :class:`ResBlock` per kernel). Shared with iSTFTNet, which stops earlier.

    Args:
        spec: the sizes.
        n_mels: input channels.
    """

    def __init__(self, spec: HifiGanSpec, n_mels: int):
        super().__init__()
        h = spec.initial_channels
        self.conv_pre = norm_conv1d(n_mels, h, 7, padding=3)
        self.ups = torch.nn.ModuleList()
        self.mrfs = torch.nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(spec.upsample_rates, spec.upsample_kernels)):
            c_in, c_out = h >> i, h >> (i + 1)
            self.ups.append(weight_norm(torch.nn.ConvTranspose1d(c_in, c_out, kernel, rate, padding=(kernel - rate) // 2)))
            self.mrfs.append(torch.nn.ModuleList(
                ResBlock(c_out, k, tuple(d), spec.resblock) for k, d in zip(spec.resblock_kernels, spec.resblock_dilations)
            ))
        self.out_channels = h >> len(spec.upsample_rates)

    def forward(self, mel: torch.Tensor, injections: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``mel: (batch, n_mels, frames)`` → ``(batch, out_channels, frames · hop)``, before
        the output activation.

        ``injections``: optional, one tensor per upsampling stage, added to that stage's output
        before its MRF (an excitation signal at each stage's rate, as NSF-HiFiGAN adds its sine
        source); stage ``i``'s is ``(batch, channels_i, frames · rate_0 ⋯ rate_i)``.
        """
        x = self.conv_pre(mel)
        for i, (up, mrf) in enumerate(zip(self.ups, self.mrfs)):
            x = up(F.leaky_relu(x, SLOPE))
            if injections is not None:
                x = x + injections[i]
            x = sum(block(x) for block in mrf) / len(mrf)
        return x

    def stage_channels(self) -> list[int]:
        """The channels of each upsampling stage's output."""
        return [up.out_channels for up in self.ups]


class HifiGanGenerator(torch.nn.Module):
    """Mel → waveform (Fig. 1): :class:`Upsampler`, LeakyReLU (slope 0.01), a 7-tap convolution
    to one channel and tanh.

    Args:
        spec: the sizes (a :data:`VARIANTS` entry or custom).
        n_mels: mel channels of the input.
    """

    def __init__(self, spec: HifiGanSpec, n_mels: int):
        super().__init__()
        self.spec, self.n_mels, self.hop = spec, int(n_mels), spec.hop
        self.trunk = Upsampler(spec, n_mels)
        self.conv_post = norm_conv1d(self.trunk.out_channels, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``mel: (batch, frames, n_mels)`` log-mel → ``(batch, frames · hop)`` audio in [-1, 1].

        Raises:
            ValueError: ``mel`` is not ``(batch, frames, n_mels)``.
        """
        check_mel_input(mel, self.n_mels)
        x = self.trunk(mel.transpose(1, 2))
        return torch.tanh(self.conv_post(F.leaky_relu(x))).squeeze(1)


def check_mel_input(mel: torch.Tensor, n_mels: int) -> None:
    """Raise unless ``mel`` is ``(batch, frames, n_mels)``.

    Raises:
        ValueError: names the expected and the given shape.
    """
    if mel.dim() != 3 or mel.shape[-1] != n_mels:
        raise ValueError(f"generator: expected a log-mel of shape (batch, frames, {n_mels}), got {tuple(mel.shape)}")


def spec_from_config(variant: str | None, overrides: dict | None = None) -> HifiGanSpec:
    """A :class:`HifiGanSpec` from a :data:`VARIANTS` name and keys that replace its fields.

    Raises:
        ValueError: an unknown variant (names the known ones) or field.
    """
    base = VARIANTS.get(str(variant).lower()) if variant else HifiGanSpec()
    if base is None:
        raise ValueError(f"hifigan: variant={variant!r}: expected one of {', '.join(VARIANTS)}")
    values = {k: getattr(base, k) for k in HifiGanSpec.__dataclass_fields__}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in values:
            raise ValueError(f"hifigan: unknown generator key {key!r} (known: {', '.join(values)})")
        values[key] = _tuple(value)
    return HifiGanSpec(**values)


def _tuple(value):
    if isinstance(value, (list, tuple)):
        return tuple(_tuple(v) for v in value)
    return int(value)
