"""Per-layer queues of past inputs for incremental WaveNet generation (Fast WaveNet, Paine et
al. 2016): each new sample costs one step per layer instead of a pass over the
receptive field."""

from __future__ import annotations

import torch


class LayerQueue:
    """A ring buffer of the last ``(kernel_size − 1) · dilation`` inputs of one dilated layer.

    The input at time ``τ`` lives in slot ``τ mod length``; slots of times before 0 hold zeros
    (the zero padding of the teacher-forced convolution).

    Args:
        batch: batch size.
        channels: R, width of the layer input.
        kernel_size: taps of the layer's convolution.
        dilation: spacing of the taps.
        dtype, device: of the buffer.
    """

    def __init__(self, batch: int, channels: int, kernel_size: int, dilation: int, dtype: torch.dtype, device):
        self.kernel_size = int(kernel_size)
        self.dilation = int(dilation)
        self.length = (self.kernel_size - 1) * self.dilation
        self.buffer = torch.zeros(batch, max(self.length, 1), channels, dtype=dtype, device=device)  # (B, Q, R)

    def taps(self, t: int, h: torch.Tensor) -> torch.Tensor:
        """The layer's inputs at ``t − (kernel_size − 1) · dilation``, …, ``t − dilation``
        from the queue and ``h: (batch, R)`` at ``t``: ``(batch, kernel_size, R)``, oldest first."""
        if self.length == 0:
            return h.unsqueeze(1)
        slots = [(t - m * self.dilation) % self.length for m in range(self.kernel_size - 1, 0, -1)]
        return torch.cat([self.buffer[:, slots], h.unsqueeze(1)], dim=1)

    def push(self, t: int, h: torch.Tensor) -> None:
        """Store the input ``h: (batch, R)`` of time ``t`` (overwrites that of ``t − length``;
        read the taps of ``t`` first)."""
        if self.length:
            self.buffer[:, t % self.length] = h
