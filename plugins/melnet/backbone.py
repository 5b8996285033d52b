"""MelNet, one tier (seed 000 §3–4): time-delayed and frequency-delayed stacks.

Layer counting: ``layers = L`` means L layers of each stack (layer ``l`` of the time-delayed
stack feeds layer ``l`` of the frequency-delayed stack, Figure 3). The input projections
``W^t_0`` / ``W^f_0`` (and the conditioning projections ``W^t_z`` / ``W^f_z``) are layer 0 and not
counted; the output projection ``W_θ`` belongs to the head. Table 2's "12" is ``layers=12``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from melforge.core.backbone import Backbone, SampleResult
from melforge.core.head import Head

from .frequency_delayed import FrequencyDelayedLayer
from .time_delayed import TimeDelayedLayer


def shift_time(x: torch.Tensor) -> torch.Tensor:
    """``x: (batch, frames, bins)`` → ``x_{i-1,j}`` (zeros at frame 0), same shape."""
    return F.pad(x, (0, 0, 1, 0))[:, :-1]


def shift_freq(x: torch.Tensor) -> torch.Tensor:
    """``x: (batch, frames, bins)`` → ``x_{i,j-1}`` (zeros at bin 0), same shape."""
    return F.pad(x, (1, 0))[..., :-1]


class MelNet(Backbone):
    """Single-tier MelNet backbone.

    Args:
        time_layers: the L time-delayed layers (:class:`TimeDelayedLayer`).
        frequency_layers: the L frequency-delayed layers (:class:`FrequencyDelayedLayer`).
        cond_features: width of conditioning features ``z`` (0: unconditional), eq. 8–9.

    Raises:
        ValueError: the two stacks differ in depth or are empty.
    """

    def __init__(
        self,
        time_layers: list[TimeDelayedLayer],
        frequency_layers: list[FrequencyDelayedLayer],
        cond_features: int = 0,
    ):
        super().__init__()
        if len(time_layers) != len(frequency_layers) or not time_layers:
            raise ValueError(
                f"melnet: need equally many (>= 1) time- and frequency-delayed layers, "
                f"got {len(time_layers)} and {len(frequency_layers)}"
            )
        hidden = time_layers[0].proj.out_features
        self.hidden_size = hidden
        self.cond_features = int(cond_features)
        self.time_input = nn.Linear(1, hidden)  # W^t_0
        self.freq_input = nn.Linear(1, hidden)  # W^f_0
        if self.cond_features:
            self.time_cond = nn.Linear(self.cond_features, hidden, bias=False)  # W^t_z
            self.freq_cond = nn.Linear(self.cond_features, hidden, bias=False)  # W^f_z
        self.time_layers = nn.ModuleList(time_layers)
        self.frequency_layers = nn.ModuleList(frequency_layers)

    @property
    def layers(self) -> int:
        return len(self.time_layers)

    def _cond(self, cond: torch.Tensor | None, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Project ``z`` for both stacks and shape it ``(batch, frames, bins, H)`` or broadcastable."""
        if not self.cond_features:
            if cond is not None:
                raise ValueError("melnet: got conditioning features but cond_features=0")
            return None
        if cond is None:
            raise ValueError(f"melnet: expects conditioning features of width {self.cond_features}")
        if cond.shape[-1] != self.cond_features:
            raise ValueError(f"melnet: conditioning width {cond.shape[-1]} != cond_features {self.cond_features}")
        if cond.dim() == 2:  # (batch, C): broadcast along time and frequency (§4.3)
            cond = cond[:, None, None, :]
        return self.time_cond(cond), self.freq_cond(cond)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``x: (batch, frames, bins)`` → ``h^f[L]: (batch, frames, bins, H)``, where position
        ``(i, j)`` depends only on ``x_<ij`` (row-major) and ``cond``."""
        if x.dim() != 3:
            raise ValueError(f"melnet: expected x of shape (batch, frames, bins), got {tuple(x.shape)}")
        h_t = self.time_input(shift_time(x).unsqueeze(-1))  # (B, T, F, H), eq. 8
        h_f = self.freq_input(shift_freq(x).unsqueeze(-1))  # (B, T, F, H), eq. 9
        z = self._cond(cond, x)
        if z is not None:
            h_t = h_t + z[0]
            h_f = h_f + z[1]
        for time_layer, freq_layer in zip(self.time_layers, self.frequency_layers):
            h_t = time_layer(h_t)  # eq. 6
            h_f = freq_layer(h_f, h_t)  # eq. 7
        return h_f

    @torch.no_grad()
    def sample(
        self,
        head: Head,
        *,
        batch: int,
        frames: int,
        bins: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        cond: torch.Tensor | None = None,
        prime: torch.Tensor | None = None,
    ) -> SampleResult:
        """Cached O(frames·bins) sampler; see :func:`melforge.plugins.melnet.sampler.sample_cached`."""
        from .sampler import sample_cached

        return sample_cached(
            self, head, batch=batch, frames=frames, bins=bins, temperature=temperature,
            generator=generator, cond=cond, prime=prime,
        )


def build_melnet(hidden_size: int = 64, layers: int = 2, cond_features: int = 0) -> MelNet:
    """MelNet backbone of ``layers`` time-/frequency-delayed layer pairs of width ``hidden_size``
    (seed 000 Table 2: hidden size 512, 12–16 layers in the initial tier).

    Raises:
        ValueError: ``hidden_size < 1`` or ``layers < 1``.
    """
    if hidden_size < 1 or layers < 1:
        raise ValueError(f"melnet: hidden_size and layers must be >= 1, got {hidden_size}, {layers}")
    return MelNet(
        [TimeDelayedLayer(hidden_size) for _ in range(layers)],
        [FrequencyDelayedLayer(hidden_size) for _ in range(layers)],
        cond_features=cond_features,
    )
