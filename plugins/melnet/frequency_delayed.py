"""The frequency-delayed stack (seed 000 §4.2, eq. 7)."""

from __future__ import annotations

import torch
from torch import nn

from .lstm import LearnedInitLSTM


class FrequencyDelayedLayer(nn.Module):
    """One layer ``l`` of the frequency-delayed stack: a 1-D LSTM forward along frequency over
    ``h^f[l-1] + h^t[l]``, projected by ``W^f_l`` and added residually (eq. 7):
    ``h^f[l] = W^f_l F^f_l(h^f[l-1], h^t[l]) + h^f[l-1]``.

    Args:
        hidden_size: H, the width of ``h^f`` and ``h^t``.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.rnn = LearnedInitLSTM(hidden_size, hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)  # W^f_l

    def forward(self, h_f: torch.Tensor, h_t: torch.Tensor) -> torch.Tensor:
        """``h_f, h_t: (batch, frames, bins, H)`` → ``(batch, frames, bins, H)``; bin ``j`` of the
        output depends on bins ``<= j`` of ``h_f + h_t`` in the same frame."""
        b, t, f, hid = h_f.shape
        out, _ = self.rnn((h_f + h_t).reshape(b * t, f, hid))  # (batch·frames, bins, H)
        return self.proj(out.reshape(b, t, f, hid)) + h_f

    def initial_state(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Trainable initial state for ``n`` sequences: two ``(n, H)``."""
        h, c = self.rnn.initial_state(n)
        return h[0], c[0]

    def step(
        self, h_f: torch.Tensor, h_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One element: ``h_f, h_t: (batch, H)`` at bin ``j``, ``state`` after bin ``j-1`` →
        ``h^f[l]`` at bin ``j``, ``(batch, H)``, and the new state."""
        state = self.rnn.cell(h_f + h_t, state)
        return self.proj(state[0]) + h_f, state
