"""A 1-D LSTM with trainable initial state and a single-step cell for cached sampling."""

from __future__ import annotations

import torch
from torch import nn


class LearnedInitLSTM(nn.Module):
    """``nn.LSTM`` (one layer, batch-first) whose initial hidden and cell states are trainable
    parameters (seed 000 Appendix A: "the initial values for all recurrent states are trainable").

    Args:
        input_size: features per step.
        hidden_size: state size H.
        bidirectional: also run backwards; outputs ``[forward, backward]`` concatenated, the
            backward half aligned to the same positions as the input (no flip needed by callers).
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False):
        super().__init__()
        self.hidden_size = hidden_size
        self.directions = 2 if bidirectional else 1
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.h0 = nn.Parameter(torch.zeros(self.directions, hidden_size))
        self.c0 = nn.Parameter(torch.zeros(self.directions, hidden_size))

    def initial_state(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Trainable initial state expanded to ``n`` sequences: two ``(directions, n, H)``."""
        h = self.h0.unsqueeze(1).expand(self.directions, n, self.hidden_size).contiguous()
        c = self.c0.unsqueeze(1).expand(self.directions, n, self.hidden_size).contiguous()
        return h, c

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x: (n, steps, input_size)`` → ``(n, steps, directions·H)`` and the final state
        (two ``(directions, n, H)``); ``state`` defaults to the trainable initial state."""
        if state is None:
            state = self.initial_state(x.shape[0])
        return self.lstm(x, state)

    def cell(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward-direction step: ``x: (n, input_size)``, ``state = (h, c)`` each ``(n, H)``
        → new ``(h, c)``. Same weights and gate order (i, f, g, o) as ``nn.LSTM``."""
        h, c = state
        gates = (
            x @ self.lstm.weight_ih_l0.T + self.lstm.bias_ih_l0 + h @ self.lstm.weight_hh_l0.T + self.lstm.bias_hh_l0
        )
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c
