"""Base class of backbones: causal feature networks over spectrograms."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from .head import Head


@dataclass
class SampleResult:
    """What a sampler returns.

    Attributes:
        x: ``(batch, frames, bins)`` sampled (normalised) spectrogram; primed frames included.
        log_prob: ``(batch,)`` summed log-density in nats of the *sampled* elements under the
            untempered model (primed frames excluded).
        sampled_elements: number of elements per batch item that were sampled.
    """

    x: torch.Tensor
    log_prob: torch.Tensor
    sampled_elements: int


class Backbone(nn.Module, ABC):
    """A network whose output at element ``(i, j)`` depends only on ``x_<ij`` (row-major order,
    seed 000 eq. 1) and on optional conditioning features.

    Attributes:
        hidden_size: width of the output features.
        cond_features: width of the conditioning features ``z`` it accepts (0: none).
    """

    hidden_size: int
    cond_features: int = 0

    @abstractmethod
    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced features.

        Args:
            x: ``(batch, frames, bins)`` spectrogram.
            cond: ``(batch, frames, bins, cond_features)`` or ``(batch, cond_features)``
                (broadcast over frames and bins), or ``None``.

        Returns:
            ``(batch, frames, bins, hidden_size)`` features, causal in row-major order.
        """

    @abstractmethod
    def sample(
        self,
        head: Head,
        *,
        batch: int,
        frames: int,
        bins: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        cond: torch.Tensor | None = None,
        prime: torch.Tensor | None = None,
    ) -> SampleResult:
        """Draw spectrograms element by element with cached state.

        Args:
            head: the likelihood head that turns features into distributions.
            batch, frames, bins: output shape ``(batch, frames, bins)``.
            temperature: sampling temperature (1: the model's distribution).
            generator: torch RNG for reproducible draws.
            cond: conditioning features as in :meth:`forward`.
            prime: ``(batch, prime_frames, bins)`` real frames to continue from, copied into the
                output unchanged.
        """
