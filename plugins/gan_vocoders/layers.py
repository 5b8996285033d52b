"""Small building blocks the GAN vocoders share: weight-normed and spectral-normed convolutions
(Salimans & Kingma 2016; Miyato et al. 2018) and the "same" padding of a dilated convolution."""

from __future__ import annotations

import torch
from torch.nn.utils import parametrizations


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the length of a stride-1 convolution: ``dilation · (kernel − 1) / 2``
    (odd kernels)."""
    return dilation * (kernel_size - 1) // 2


def weight_norm(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with its ``weight`` reparametrised as ``g · v / ‖v‖`` (one ``g`` per output
    channel): the normalisation HiFi-GAN's and MelGAN's generators use."""
    return parametrizations.weight_norm(module)


def spectral_norm(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with its weight divided by its largest singular value (power iteration):
    the first scale of HiFi-GAN's multi-scale discriminator (§2.3)."""
    return parametrizations.spectral_norm(module)


def norm_conv1d(*args, norm: str = "weight", **kwargs) -> torch.nn.Module:
    """A ``Conv1d`` under ``norm`` (``"weight"`` or ``"spectral"``)."""
    conv = torch.nn.Conv1d(*args, **kwargs)
    return spectral_norm(conv) if norm == "spectral" else weight_norm(conv)


def count_parameters(module: torch.nn.Module) -> int:
    """Parameters of ``module`` as the papers count them: the weights and biases of the network
    that runs at inference, weight norm folded into the weight (its per-channel gains ``g``
    left out: they are 0.1 % of V1 and 0.3 % of V2; with them V2 has 0.929 M against the
    paper's 0.92 M)."""
    return sum(p.numel() for name, p in module.named_parameters()
               if p.requires_grad and not name.endswith("parametrizations.weight.original0"))
