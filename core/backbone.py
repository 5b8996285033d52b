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

    A backbone built for an upsampling tier of a multiscale model (seed 000 §5) also takes the
    tier's context ``x_<g``, a ``(batch, frames, bins)`` tensor of the same shape as ``x`` that
    it may read in full (it is known before the tier is generated).

    Attributes:
        hidden_size: width of the output features.
        cond_features: width of the conditioning features ``z`` it accepts (0: none).
        takes_context: whether it is an upsampling tier (needs ``context``).
    """

    hidden_size: int
    cond_features: int = 0
    takes_context: bool = False

    @abstractmethod
    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher-forced features.

        Args:
            x: ``(batch, frames, bins)`` spectrogram.
            cond: ``(batch, frames, bins, cond_features)`` or ``(batch, cond_features)``
                (broadcast over frames and bins), or ``None``.
            context: ``(batch, frames, bins)`` context ``x_<g`` of an upsampling tier, or ``None``.

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
        context: torch.Tensor | None = None,
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
            context: the context ``x_<g`` of an upsampling tier, as in :meth:`forward`.
        """


def check_sample_inputs(
    *, batch: int, frames: int, bins: int, prime: torch.Tensor | None, context: torch.Tensor | None
) -> int:
    """Validate a sampler's ``prime`` and ``context``; returns the number of primed frames.

    Raises:
        ValueError: ``prime`` not ``(batch, <= frames, bins)``, or ``context`` not
            ``(batch, frames, bins)``.
    """
    primed = 0
    if prime is not None:
        if prime.dim() != 3 or prime.shape[0] != batch or prime.shape[2] != bins or prime.shape[1] > frames:
            raise ValueError(
                f"prime: expected shape ({batch}, <= {frames}, {bins}), got {tuple(prime.shape)}"
            )
        primed = prime.shape[1]
    if context is not None and tuple(context.shape) != (batch, frames, bins):
        raise ValueError(f"context: expected shape ({batch}, {frames}, {bins}), got {tuple(context.shape)}")
    return primed
