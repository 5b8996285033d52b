"""An autoregressive model: a backbone and a likelihood head, composed."""

from __future__ import annotations

import math

import torch
from torch import nn

from .backbone import Backbone
from .head import Head
from .masking import all_full, frame_mask
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
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x: (batch, frames, bins)`` → per-element log-density ``(batch, frames, bins)`` in nats.
        ``cond`` and ``context`` as in :meth:`melforge.core.backbone.Backbone.forward`.

        ``lengths: (batch,)`` valid frames per row of a right-padded batch (or ``None``): the
        valid positions then equal those of each clip alone
        (:meth:`~melforge.core.backbone.Backbone.forward_padded`) and padded positions are 0."""
        if all_full(lengths, x.shape[1]):
            h = self.backbone(x, cond, context)
        else:
            h = self.backbone.forward_padded(x, cond, context, lengths)
        params = self.head(h)  # (batch, frames, bins, num_params)
        with torch.autocast(params.device.type, enabled=False):  # NLL in fp32 (or wider) under mixed precision
            lp = self.head.log_prob(_at_least_fp32(params), _at_least_fp32(x))
        if not all_full(lengths, x.shape[1]):
            lp = torch.where(frame_mask(lengths, x.shape[1]).unsqueeze(-1), lp, torch.zeros((), dtype=lp.dtype))
        return lp

    def nll(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean negative log-likelihood in nats per element (a scalar)."""
        return -self.log_prob(x, cond, context).mean()

    @torch.no_grad()
    def sample(self, sampler: Sampler, request: SampleRequest) -> SampleResult:
        """Draw ``request`` with ``sampler`` (see :class:`melforge.core.sampler.Sampler`)."""
        return sampler.sample(self, request)


def _at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when it is a narrower float (fp16, bf16); float32/float64 unchanged."""
    return t.float() if t.is_floating_point() and torch.finfo(t.dtype).bits < 32 else t


def nats_to_bits(nats: float) -> float:
    """Convert nats to bits (divide by ln 2)."""
    return nats / math.log(2.0)
