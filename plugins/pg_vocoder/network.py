"""The phase-gradient vocoder's network (seed 002 §3.1, Fig. 3), with a fourth output channel.

A stack of 1-D convolutions along time (8 layers of 1536 channels, kernel 3, ReLU in the paper)
maps the log-mel spectrogram ``(batch, frames, n_mels)`` to four linear-frequency channels,
each ``(batch, frames, bins)`` (the paper's three, then λ):

- ``logmag``: the log-magnitude ``log|X|`` (nats). A direct path adds the mel→linear warp of the
  input (:mod:`.warp`, standardised with the target statistics) to the network's output; the
  sum goes through the scaled tanh ``f_β(x) = β tanh(x/β)``, β = 5, then the per-bin scale and
  offset of the training targets.
- ``dm``, ``dn``: the frequency and time bin offsets of eq. 6 (bins, frames); linear outputs
  with the per-bin scale and offset of the training targets.
- ``lam``: a learned estimate of the classification λ, through a sigmoid: a fourth output
  channel, not in the paper, trained by eq. 10 against the target λ (eq. 12 of the true
  offsets) and passed to the integrator as it is. The paper has no such channel: it computes
  λ̂ with eq. 12 from the predicted offsets Δm̂, Δn̂, for both eq. 10 and the integration.
  The channel costs ``kernel · channels · bins + bins`` parameters of the output layer
  (4.72 M at the paper's size).

The input bins are standardised per mel with the training set's mean and deviation (§3.1). All
statistics are buffers, so they travel in the checkpoint with the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

#: Output channels: log-magnitude, Δm, Δn, λ.
CHANNELS = ("logmag", "dm", "dn", "lam")


@dataclass(frozen=True)
class NetworkSpec:
    """Size of the network: ``layers`` convolutions (the last one is the output layer) of
    ``channels`` hidden channels and ``kernel_size`` frames, and the β of the magnitude's
    scaled tanh.

    Raises:
        ValueError: ``layers < 2``, ``channels < 1``, an even or non-positive ``kernel_size``
            (the output must keep the input's frames), or ``beta <= 0``.
    """

    layers: int = 8
    channels: int = 1536
    kernel_size: int = 3
    beta: float = 5.0

    def __post_init__(self) -> None:
        if int(self.layers) < 2:
            raise ValueError(f"pg_vocoder: layers must be >= 2, got {self.layers}")
        if int(self.channels) < 1:
            raise ValueError(f"pg_vocoder: channels must be >= 1, got {self.channels}")
        if int(self.kernel_size) < 1 or int(self.kernel_size) % 2 == 0:
            raise ValueError(f"pg_vocoder: kernel_size must be odd and >= 1, got {self.kernel_size}")
        if not float(self.beta) > 0:
            raise ValueError(f"pg_vocoder: beta must be > 0, got {self.beta}")


class PhaseGradientNet(nn.Module):
    """Log-mel → (log-magnitude, Δm, Δn, λ).

    Args:
        warp: ``(bins, n_mels)`` mel→linear interpolation weights (:func:`.warp.mel_warp`).
        log_gain: ``(n_mels,)`` log filter gains of the warp.
        spec: the network's size.

    The statistics buffers start at mean 0, deviation 1; :meth:`set_statistics` fills them
    from the training set (or ``load_state_dict`` from a checkpoint).
    """

    def __init__(self, warp: np.ndarray, log_gain: np.ndarray, spec: NetworkSpec = NetworkSpec()):
        super().__init__()
        n_bins, n_mels = warp.shape
        self.spec, self.n_mels, self.n_bins = spec, int(n_mels), int(n_bins)
        k, c = int(spec.kernel_size), int(spec.channels)
        layers: list[nn.Module] = []
        width = n_mels
        for _ in range(int(spec.layers) - 1):
            layers += [nn.Conv1d(width, c, k, padding=k // 2), nn.ReLU()]
            width = c
        layers.append(nn.Conv1d(width, len(CHANNELS) * n_bins, k, padding=k // 2))
        self.convs = nn.Sequential(*layers)
        self.register_buffer("warp", torch.as_tensor(warp, dtype=torch.float32))
        self.register_buffer("log_gain", torch.as_tensor(log_gain, dtype=torch.float32))
        for name, size in (("mel", n_mels), ("logmag", n_bins), ("dm", n_bins), ("dn", n_bins)):
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))

    def set_statistics(self, stats: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Per-bin ``(mean, std)`` of ``"mel"`` (input, ``(n_mels,)``) and of ``"logmag"``,
        ``"dm"``, ``"dn"`` (targets, ``(bins,)``), from the training set."""
        for name, (mean, std) in stats.items():
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(mean, dtype=torch.float32))
            getattr(self, f"{name}_std").copy_(torch.as_tensor(std, dtype=torch.float32))

    def direct_path(self, log_mel: torch.Tensor) -> torch.Tensor:
        """The mel→linear warp of the input: ``(batch, frames, n_mels)`` log-mel power (nats) →
        ``(batch, frames, bins)`` log-magnitude (nats), ``½ W (log M − log g)``."""
        return 0.5 * (log_mel - self.log_gain) @ self.warp.T

    def forward(self, log_mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """``log_mel: (batch, frames, n_mels)`` natural-log mel power (the ``log_mel``
        representation's features, unnormalised) → ``{"logmag", "dm", "dn", "lam"}``, each
        ``(batch, frames, bins)``: log-magnitude in nats, Δm in bins, Δn in frames, λ in (0, 1).

        Raises:
            ValueError: the input is not ``(batch, frames, n_mels)``.
        """
        if log_mel.ndim != 3 or log_mel.shape[-1] != self.n_mels:
            raise ValueError(f"pg_vocoder network: expected (batch, frames, {self.n_mels}) log-mel, got {tuple(log_mel.shape)}")
        batch, frames, _ = log_mel.shape
        x = ((log_mel - self.mel_mean) / self.mel_std).transpose(1, 2)  # (batch, n_mels, frames)
        h = self.convs(x).view(batch, len(CHANNELS), self.n_bins, frames).transpose(2, 3)  # (batch, 4, frames, bins)
        direct = (self.direct_path(log_mel) - self.logmag_mean) / self.logmag_std  # standardised
        beta = float(self.spec.beta)
        mag = beta * torch.tanh((h[:, 0] + direct) / beta)  # f_β, §3.1
        return {
            "logmag": mag * self.logmag_std + self.logmag_mean,
            "dm": h[:, 1] * self.dm_std + self.dm_mean,
            "dn": h[:, 2] * self.dn_std + self.dn_mean,
            "lam": torch.sigmoid(h[:, 3]),
        }

    def parameter_count(self) -> int:
        """Trainable parameters: with ``L`` layers, ``C`` channels, kernel ``k`` and ``B`` bins,
        ``(k·n_mels·C + C) + (L − 2)(k·C² + C) + (k·C·4B + 4B)`` (input, hidden and output
        convolutions; the warp and statistics are buffers)."""
        return sum(p.numel() for p in self.parameters())
