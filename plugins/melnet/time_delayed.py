"""The time-delayed stack (seed 000 §4.1, eq. 6)."""

from __future__ import annotations

import torch
from torch import nn

from .lstm import LearnedInitLSTM


class TimeDelayedLayer(nn.Module):
    """One layer ``l`` of the time-delayed stack: a multidimensional RNN of three 1-D LSTMs over
    ``h^t[l-1]`` — forward in time (along each frequency bin), forward and backward in frequency
    (along each frame) — whose hidden states are concatenated, projected by ``W^t_l`` and added
    residually: ``h^t[l] = W^t_l F^t_l(h^t[l-1]) + h^t[l-1]`` (eq. 6).

    Args:
        hidden_size: H, the width of ``h^t``.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.time_rnn = LearnedInitLSTM(hidden_size, hidden_size)
        self.freq_rnn = LearnedInitLSTM(hidden_size, hidden_size, bidirectional=True)
        self.proj = nn.Linear(3 * hidden_size, hidden_size)  # W^t_l

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h: (batch, frames, bins, H)`` → ``(batch, frames, bins, H)``; frame ``i`` of the output
        depends on frames ``<= i`` of the input."""
        b, t, f, hid = h.shape
        along_time = h.permute(0, 2, 1, 3).reshape(b * f, t, hid)  # (batch·bins, frames, H)
        out_t, _ = self.time_rnn(along_time)
        out_t = out_t.reshape(b, f, t, hid).permute(0, 2, 1, 3)  # (batch, frames, bins, H)
        out_f, _ = self.freq_rnn(h.reshape(b * t, f, hid))  # (batch·frames, bins, 2H)
        out_f = out_f.reshape(b, t, f, 2 * hid)
        return self.proj(torch.cat([out_t, out_f], dim=-1)) + h

    def step(
        self, h: torch.Tensor, time_state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One frame with cached time-RNN state.

        Args:
            h: ``(batch, bins, H)`` this frame of ``h^t[l-1]``.
            time_state: the time-RNN state after the previous frame (two ``(1, batch·bins, H)``),
                or ``None`` at the first frame.

        Returns:
            ``(batch, bins, H)`` this frame of ``h^t[l]`` and the new time-RNN state.
        """
        b, f, hid = h.shape
        out_t, time_state = self.time_rnn(h.reshape(b * f, 1, hid), time_state)
        out_f, _ = self.freq_rnn(h)  # (batch, bins, 2H)
        out = self.proj(torch.cat([out_t.reshape(b, f, hid), out_f], dim=-1)) + h
        return out, time_state
