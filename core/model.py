"""An autoregressive model: a backbone and a likelihood head, composed."""

from __future__ import annotations

import math

import torch
from torch import nn

from .backbone import Backbone
from .head import Head
from .sampler import SampleRequest, SampleResult, Sampler


class SpectrogramModel(nn.Module):
    """``p(x) = Π_ij p(x_ij | x_<ij)`` with features from ``backbone`` and distributions from
    ``head`` (seed 000 eq. 1).

    Args:
        backbone: causal feature network (e.g. MelNet).
        head: likelihood head whose ``in_features`` equals ``backbone.hidden_size``.

    Raises:
        ValueError: the head's ``in_features`` does not match the backbone's ``hidden_size``.
    """

    def __init__(self, backbone: Backbone, head: Head):
        super().__init__()
        if head.in_features != backbone.hidden_size:
            raise ValueError(
                f"head expects {head.in_features} input features but the backbone gives {backbone.hidden_size}"
            )
        self.backbone = backbone
        self.head = head

    def log_prob(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x: (batch, frames, bins)`` → per-element log-density ``(batch, frames, bins)`` in nats.
        ``cond`` and ``context`` as in :meth:`melforge.core.backbone.Backbone.forward`."""
        params = self.head(self.backbone(x, cond, context))  # (batch, frames, bins, num_params)
        return self.head.log_prob(params, x)

    def nll(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean negative log-likelihood in nats per element (a scalar)."""
        return -self.log_prob(x, cond, context).mean()

    @torch.no_grad()
    def sample(self, sampler: Sampler, request: SampleRequest) -> SampleResult:
        """Draw ``request`` with ``sampler`` (see :class:`melforge.core.sampler.Sampler`)."""
        return sampler.sample(self, request)


def nats_to_bits(nats: float) -> float:
    """Convert nats to bits (divide by ln 2)."""
    return nats / math.log(2.0)
