"""Causality helpers of WaveNet (van den Oord et al. 2016 §2.1): the one-sample input shift,
the dilation schedule and the receptive field it gives."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """``x: (batch, channels, samples)`` → ``x_{t-1}`` (zeros at ``t = 0``), same shape, so that
    a network over the shifted input sees only ``x_<t`` at ``t``."""
    return F.pad(x, (1, 0))[..., :-1]


def dilations(layers: int, dilation_cycle: int) -> list[int]:
    """Dilation of each residual layer, ``2^(i mod dilation_cycle)`` for ``i = 0 … layers − 1``
    (seed 000 Table 3: cycle 10, i.e. 1, 2, …, 512, 1, 2, …)."""
    return [2 ** (i % dilation_cycle) for i in range(layers)]


def receptive_field(kernel_size: int, layer_dilations: list[int]) -> int:
    """Samples the output at ``t`` sees through the shifted input and a stack of dilated causal
    convolutions: ``1 + Σ_i (kernel_size − 1) · d_i``, namely ``x_{t−R} … x_{t−1}``.

    Seed 000 Table 3 rounds the same count per dilation cycle of 10 to 2048 samples (50 layers
    → "10,240"; the formula gives 10,231; 60 layers → "12,288", formula 12,277).
    """
    return 1 + (kernel_size - 1) * sum(layer_dilations)
