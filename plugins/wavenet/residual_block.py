"""One residual block of WaveNet (van den Oord et al. 2016 §2.3–2.4, Figure 4; seed 000
Table 3): dilated causal convolution, gated activation units with global or local
conditioning, 1×1 residual and skip projections."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    """``z = tanh(W_f * h + V_f c) ⊙ σ(W_g * h + V_g c)`` (van den Oord et al. 2016 eq. 3;
    eq. 4–5 with conditioning), then ``h' = h + W_r z`` (residual) and ``s = W_s z`` (skip).

    ``*`` is a causal convolution of kernel ``kernel_size`` and dilation ``dilation``: the output
    at ``t`` reads ``h`` at ``t − (kernel_size − 1 − k) · dilation`` for taps ``k = 0 …
    kernel_size − 1`` (zeros before ``t = 0``). Filter and gate come from one convolution of
    ``2 · residual_channels`` outputs (filter first); ``V c`` is a linear map of the conditioning
    features, added to both pre-activations.

    Args:
        residual_channels: R, width of ``h``.
        skip_channels: S, width of ``s``.
        kernel_size: taps of the dilated convolution (Table 3: 3).
        dilation: spacing of the taps in samples.
        cond_features: C, width of the conditioning features (0: none).
        residual: whether to compute ``h'`` (the last block's residual output is unused).

    Raises:
        ValueError: a non-positive size.
    """

    def __init__(
        self,
        residual_channels: int,
        skip_channels: int,
        kernel_size: int,
        dilation: int,
        cond_features: int = 0,
        residual: bool = True,
    ):
        super().__init__()
        if min(residual_channels, skip_channels, kernel_size, dilation) < 1 or cond_features < 0:
            raise ValueError(
                f"wavenet block: sizes must be >= 1, got residual {residual_channels}, skip {skip_channels}, "
                f"kernel {kernel_size}, dilation {dilation}, cond {cond_features}"
            )
        self.residual_channels = int(residual_channels)
        self.kernel_size = int(kernel_size)
        self.dilation = int(dilation)
        r = self.residual_channels
        self.conv = nn.Conv1d(r, 2 * r, self.kernel_size, dilation=self.dilation)  # [W_f; W_g]
        self.cond_proj = nn.Linear(int(cond_features), 2 * r, bias=False) if cond_features else None  # [V_f; V_g]
        self.skip = nn.Conv1d(r, int(skip_channels), 1)  # W_s
        self.res = nn.Conv1d(r, r, 1) if residual else None  # W_r

    @property
    def queue_length(self) -> int:
        """Past inputs the incremental step needs: ``(kernel_size − 1) · dilation`` samples."""
        return (self.kernel_size - 1) * self.dilation

    def _gate(self, a: torch.Tensor, dim: int) -> torch.Tensor:
        f, g = a.chunk(2, dim=dim)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, h: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Teacher-forced block.

        Args:
            h: ``(batch, R, samples)`` input.
            cond: ``(batch, samples or 1, C)`` conditioning features, or ``None``.

        Returns:
            ``(h', s)``: ``(batch, R, samples)`` (``None`` without the residual projection) and
            ``(batch, S, samples)``.
        """
        a = self.conv(F.pad(h, (self.queue_length, 0)))  # (B, 2R, T), causal
        if self.cond_proj is not None:
            a = a + self.cond_proj(cond).transpose(1, 2)  # (B, 2R, T or 1)
        z = self._gate(a, dim=1)  # (B, R, T)
        return (h + self.res(z) if self.res is not None else None), self.skip(z)

    def step(
        self, taps: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """One sample of :meth:`forward` from its inputs at the taps (Fast WaveNet, Paine et al.
        2016).

        Args:
            taps: ``(batch, kernel_size, R)``: ``h`` at ``t − (kernel_size − 1) · dilation``,
                …, ``t − dilation``, ``t`` (oldest first; zeros before ``t = 0``).
            cond: ``(batch, C)`` conditioning features at ``t``, or ``None``.

        Returns:
            ``(h'_t, s_t)``: ``(batch, R)`` (``None`` without the residual projection) and
            ``(batch, S)``.
        """
        weight = self.conv.weight.permute(0, 2, 1).reshape(self.conv.out_channels, -1)  # (2R, K·R), tap-major
        a = F.linear(taps.reshape(taps.shape[0], -1), weight, self.conv.bias)  # (B, 2R)
        if self.cond_proj is not None:
            a = a + self.cond_proj(cond)
        z = self._gate(a, dim=1)  # (B, R)
        h = taps[:, -1]
        h_next = h + F.linear(z, self.res.weight[:, :, 0], self.res.bias) if self.res is not None else None
        return h_next, F.linear(z, self.skip.weight[:, :, 0], self.skip.bias)
