"""The feature-extraction network of an upsampling tier (seed 000 §5.1)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .checkpointing import maybe_checkpoint
from .lstm import LearnedInitLSTM


class FeatureExtractionLayer(nn.Module):
    """One layer of the feature-extraction network: a multidimensional RNN of four 1-D LSTMs
    running forwards and backwards along time (for each bin) and forwards and backwards along
    frequency (for each frame). Like a time-delayed layer (eq. 6) but not causal: it adds the
    backward-in-time RNN and its input is not shifted (§5.1). The four hidden states are
    concatenated, projected and added residually: ``h[l] = W_l F_l(h[l-1]) + h[l-1]``.

    Args:
        hidden_size: H, the width of ``h``.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.time_rnn = LearnedInitLSTM(hidden_size, hidden_size, bidirectional=True)
        self.freq_rnn = LearnedInitLSTM(hidden_size, hidden_size, bidirectional=True)
        self.proj = nn.Linear(4 * hidden_size, hidden_size)  # W_l

    def forward(self, h: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``h: (batch, frames, bins, H)`` → ``(batch, frames, bins, H)``; every output element
        depends on every input element of its clip.

        ``lengths: (batch,)`` valid frames per row of a right-padded batch, or ``None``: the
        time RNN then runs over each row's valid frames only (a packed sequence), so the
        backward-in-time direction starts at the clip's last frame and the valid outputs equal
        those of the unpadded clip; padded outputs are zero before the residual."""
        b, t, f, hid = h.shape
        along_time = h.permute(0, 2, 1, 3).reshape(b * f, t, hid)  # (batch·bins, frames, H)
        if lengths is None:
            out_t, _ = self.time_rnn(along_time)  # (batch·bins, frames, 2H)
        else:
            out_t = self._packed_time_rnn(along_time, lengths.repeat_interleave(f), t)
        out_t = out_t.reshape(b, f, t, 2 * hid).permute(0, 2, 1, 3)  # (batch, frames, bins, 2H)
        out_f, _ = self.freq_rnn(h.reshape(b * t, f, hid))  # (batch·frames, bins, 2H)
        out_f = out_f.reshape(b, t, f, 2 * hid)
        return self.proj(torch.cat([out_t, out_f], dim=-1)) + h

    def _packed_time_rnn(self, seqs: torch.Tensor, lengths: torch.Tensor, total: int) -> torch.Tensor:
        """The time RNN over ``seqs: (n, total, H)`` cropped to ``lengths: (n,)`` →
        ``(n, total, 2H)``, zero after each sequence's end."""
        packed = pack_padded_sequence(seqs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.time_rnn.lstm(packed, self.time_rnn.initial_state(seqs.shape[0]))
        return pad_packed_sequence(out, batch_first=True, total_length=total)[0]


class FeatureExtractionNetwork(nn.Module):
    """Features of the context ``x_<g`` that condition tier ``g`` (seed 000 §5.1): an input
    projection ``W_0 x_<g`` (not shifted) followed by :class:`FeatureExtractionLayer` s. The
    output has the shape of ``x_<g``, which equals the shape of ``x_g`` (each tier doubles the
    resolution along one axis), so it conditions tier ``g`` through eq. 8–9 element by element.

    Args:
        layers: the feature-extraction layers (at least one), all of the same width.
        checkpoint: recompute each layer's activations in the backward pass (less memory).

    Raises:
        ValueError: no layers.
    """

    def __init__(self, layers: list[FeatureExtractionLayer], checkpoint: bool = False):
        super().__init__()
        if not layers:
            raise ValueError("feature-extraction network: need at least one layer")
        self.hidden_size = layers[0].proj.out_features
        self.input = nn.Linear(1, self.hidden_size)  # W_0
        self.layers = nn.ModuleList(layers)
        self.checkpoint = bool(checkpoint)

    def forward(self, context: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``context: (batch, frames, bins)`` (``x_<g``) → ``(batch, frames, bins, H)``;
        ``lengths: (batch,)`` valid frames of a right-padded batch, or ``None`` (see
        :meth:`FeatureExtractionLayer.forward`)."""
        h = self.input(context.unsqueeze(-1))
        for layer in self.layers:
            if lengths is None:
                h = maybe_checkpoint(layer, self.checkpoint and self.training, h)
            else:
                h = maybe_checkpoint(layer, self.checkpoint and self.training, h, lengths)
        return h
