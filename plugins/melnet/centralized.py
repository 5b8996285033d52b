"""The centralized stack (the later version of seed 000, arXiv:1906.01083 v2, and both public
implementations): one RNN along time over whole frames, broadcast to every bin."""

from __future__ import annotations

import torch
from torch import nn

from .lstm import LearnedInitLSTM


class CentralizedLayer(nn.Module):
    """One layer ``l`` of the centralized stack: an LSTM forwards along time over one vector per
    frame, projected and added residually, ``h^c[l] = W^c_l F^c_l(h^c[l-1]) + h^c[l-1]``. Its
    input layer is ``h^c_i[0] = W^c_0 x_{i-1,*}``, a linear map of the *whole* previous frame, so
    each frame is summarised at once rather than bin by bin; layer ``l``'s output is added to
    the time-delayed stack's ``h^t[l]`` at every bin where it enters the frequency-delayed stack.

    Args:
        hidden_size: H.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.rnn = LearnedInitLSTM(hidden_size, hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)  # W^c_l

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h: (batch, frames, H)`` → ``(batch, frames, H)``; frame ``i`` of the output depends
        on frames ``<= i`` of the input."""
        out, _ = self.rnn(h)
        return self.proj(out) + h

    def step(
        self, h: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One frame: ``h: (batch, H)`` and the LSTM state after the previous frame (two
        ``(1, batch, H)``, ``None`` at frame 0) → ``(batch, H)`` and the new state."""
        out, state = self.rnn(h.unsqueeze(1), state)
        return self.proj(out[:, 0]) + h, state
