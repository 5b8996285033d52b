"""WaveNet over μ-law samples (van den Oord et al. 2016; seed 000 Appendix A.2, Table 3): the
waveform baseline, as a backbone of one bin per frame (a frame is a sample).

Layer counting: ``layers = L`` residual blocks of dilated causal convolutions; the input
projection and the output network (skip sum → ReLU → 1×1 → ReLU) are not counted; the final
projection onto the classes belongs to the head (:mod:`melforge.plugins.categorical`). Table 3's
"50" is ``layers=50``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from melforge.core.backbone import Backbone
from melforge.core.sampler import SampleRequest

from .causal import dilations, receptive_field, shift_right
from .queues import LayerQueue
from .residual_block import ResidualBlock


class WaveNet(Backbone):
    """WaveNet (van den Oord et al. 2016 §2, Figure 4).

    ``x: (batch, samples, 1)`` → features ``(batch, samples, 1, S)`` where sample ``t`` sees
    ``x_{t−R} … x_{t−1}`` (R = :attr:`receptive_field`) and the conditioning features:

    1. input: a 1×1 convolution of the shifted input ``x_{t−1}`` (a scalar, the μ-law level's
       companded value) to R channels;
    2. ``layers`` residual blocks (:class:`ResidualBlock`): dilated causal convolution of
       kernel ``kernel_size`` and dilation ``2^(i mod dilation_cycle)``, gated units
       ``tanh(W_f * h + V_f c) ⊙ σ(W_g * h + V_g c)`` (eq. 3–5), 1×1 residual and skip
       projections;
    3. output: ``ReLU(W_o ReLU(Σ skips) + b_o)``, width S (the head's ``in_features``; the
       head's linear map and softmax complete van den Oord et al.'s output stack).

    Conditioning ``c``: global ``(batch, C)`` (e.g. a one-hot speaker, broadcast over time,
    §2.5) or local ``(batch, samples, 1, C)`` / ``(batch, samples, C)``; each block has its own
    ``V = [V_f; V_g]``.

    Implements the incremental-state protocol (:class:`~melforge.core.backbone.Backbone`) with
    one :class:`LayerQueue` per block (Fast WaveNet, Paine et al. 2016): :meth:`next_frame` runs
    the residual stack for one sample in O(layers), :meth:`next_element` the output network.

    Args:
        blocks: the residual blocks, all of the same widths (the last one without residual
            projection).
        cond_features: C (0: unconditional).

    Raises:
        ValueError: no blocks, or blocks of differing widths.
    """

    family = "wavenet"
    incremental = True

    def __init__(self, blocks: list[ResidualBlock], cond_features: int = 0):
        super().__init__()
        if not blocks:
            raise ValueError("wavenet: needs at least one residual block")
        r = blocks[0].residual_channels
        s = blocks[0].skip.out_channels
        if any(b.residual_channels != r or b.skip.out_channels != s for b in blocks):
            raise ValueError("wavenet: all residual blocks must have the same residual and skip widths")
        self.residual_channels, self.skip_channels = r, s
        self.hidden_size = s
        self.cond_features = int(cond_features)
        self.kernel_size = blocks[0].kernel_size
        self.input = nn.Conv1d(1, r, 1)  # on x_{t-1}
        self.blocks = nn.ModuleList(blocks)
        self.output = nn.Conv1d(s, s, 1)  # W_o

    @property
    def layers(self) -> int:
        return len(self.blocks)

    @property
    def dilations(self) -> list[int]:
        """Dilation of each block, in samples."""
        return [b.dilation for b in self.blocks]

    @property
    def receptive_field(self) -> int:
        """Past samples the output at ``t`` sees, ``x_{t−R} … x_{t−1}``:
        ``1 + Σ_i (kernel_size − 1) · d_i`` (see :func:`causal.receptive_field`)."""
        return receptive_field(self.kernel_size, self.dilations)

    def conditioning(self, cond: torch.Tensor | None, samples: int | None = None) -> torch.Tensor | None:
        """Conditioning features as ``(batch, samples or 1, C)`` (``1``: global, broadcast over
        time), or ``None``.

        Args:
            cond: ``(batch, C)``, ``(batch, samples, 1, C)`` or ``(batch, samples, C)``, or ``None``.
            samples: the sequence length, checked against a local ``cond`` when given.

        Raises:
            ValueError: ``cond`` given with ``cond_features=0`` or missing with it, of another
                width, rank or length.
        """
        if not self.cond_features:
            if cond is not None:
                raise ValueError("wavenet: got conditioning features but cond_features=0")
            return None
        if cond is None:
            raise ValueError(f"wavenet: expects conditioning features of width {self.cond_features}")
        if cond.shape[-1] != self.cond_features:
            raise ValueError(f"wavenet: conditioning width {cond.shape[-1]} != cond_features {self.cond_features}")
        if cond.dim() == 2:  # (B, C): global, §2.5
            return cond[:, None, :]
        if cond.dim() == 4:
            if cond.shape[2] != 1:
                raise ValueError(f"wavenet: local conditioning must be (batch, samples, 1, C), got {tuple(cond.shape)}")
            cond = cond[:, :, 0]
        if cond.dim() != 3:
            raise ValueError(
                f"wavenet: conditioning must be (batch, C), (batch, samples, C) or (batch, samples, 1, C), "
                f"got {tuple(cond.shape)}"
            )
        if samples is not None and cond.shape[1] != samples:
            raise ValueError(f"wavenet: local conditioning has {cond.shape[1]} samples, x has {samples}")
        return cond

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x: (batch, samples, 1)`` → ``(batch, samples, 1, S)`` features, causal: sample
        ``t`` depends only on ``x_{t−R} … x_{t−1}`` and ``cond``.

        Raises:
            ValueError: ``x`` not ``(batch, samples, 1)``, a ``context`` (WaveNet has no
                multiscale tiers), or see :meth:`conditioning`.
        """
        if x.dim() != 3 or x.shape[2] != 1:
            raise ValueError(f"wavenet: expected x of shape (batch, samples, 1), got {tuple(x.shape)}")
        if context is not None:
            raise ValueError("wavenet: takes no context x_<g (it has no multiscale tiers)")
        z = self.conditioning(cond, x.shape[1])
        h = self.input(shift_right(x.transpose(1, 2)))  # (B, R, T)
        skips = 0
        for block in self.blocks:
            h, s = block(h, z)
            skips = skips + s  # (B, S, T)
        out = F.relu(self.output(F.relu(skips)))  # (B, S, T)
        return out.transpose(1, 2).unsqueeze(2)  # (B, T, 1, S)

    # --- incremental-state protocol (the cached sampler; Fast WaveNet) ---

    def start(self, request: SampleRequest) -> "WaveNetState":
        """Empty queues for ``request.batch`` sequences and its conditioning features.

        Raises:
            ValueError: ``request.bins != 1``, a ``context``, or see :meth:`conditioning`.
        """
        if request.bins != 1:
            raise ValueError(f"wavenet: samples one value per frame (bins=1), got bins={request.bins}")
        if request.context is not None:
            raise ValueError("wavenet: takes no context x_<g (it has no multiscale tiers)")
        param = next(self.parameters())
        z = self.conditioning(request.cond, request.frames)
        queues = [
            LayerQueue(request.batch, self.residual_channels, b.kernel_size, b.dilation, param.dtype, param.device)
            for b in self.blocks
        ]
        return WaveNetState(z=None if z is None else z.to(param.dtype), queues=queues)

    def next_frame(self, state: "WaveNetState", i: int, prev_frame: torch.Tensor) -> None:
        """Run the residual stack for sample ``i`` on ``x_{i−1}: (batch, 1)``, one step per block,
        pushing each block's input into its queue; keeps the skip sum for :meth:`next_element`."""
        h = F.linear(prev_frame, self.input.weight[:, :, 0], self.input.bias)  # (B, R)
        z_i = None if state.z is None else state.z[:, 0 if state.z.shape[1] == 1 else i]  # (B, C)
        skips = 0
        for block, queue in zip(self.blocks, state.queues):
            taps = queue.taps(i, h)  # (B, K, R)
            queue.push(i, h)
            h, s = block.step(taps, z_i)
            skips = skips + s
        state.skips = skips  # (B, S)

    def next_element(self, state: "WaveNetState", i: int, j: int, prev_value: torch.Tensor) -> torch.Tensor:
        """Features ``(batch, S)`` of sample ``i`` (``j = 0``, the only bin): the output network
        on the skip sum of :meth:`next_frame` (``prev_value``, zeros, is not used)."""
        return F.relu(F.linear(F.relu(state.skips), self.output.weight[:, :, 0], self.output.bias))

    def teacher_frame(self, state: "WaveNetState", i: int, frame: torch.Tensor) -> None:
        """Nothing to do: a primed sample ``x_i`` enters the queues through the next
        :meth:`next_frame`, which receives it as ``x_{i−1}``."""


@dataclass
class WaveNetState:
    """WaveNet's incremental state: conditioning features ``z: (batch, samples or 1, C)`` (or
    ``None``), one :class:`LayerQueue` per block, and the skip sum ``(batch, S)`` of the
    current sample."""

    z: torch.Tensor | None
    queues: list[LayerQueue]
    skips: torch.Tensor | None = None


def build_wavenet(
    layers: int = 20,
    residual_channels: int = 32,
    skip_channels: int = 64,
    kernel_size: int = 3,
    dilation_cycle: int = 10,
    cond_features: int = 0,
    bins: int = 1,
    context: bool = False,
) -> WaveNet:
    """A WaveNet of ``layers`` residual blocks (seed 000 Table 3: 50 layers for Blizzard, 60 for
    VoxCeleb2; kernel 3; dilation ``2^(i mod 10)``; residual and skip channels 512).

    Args:
        layers: residual blocks L.
        residual_channels: R.
        skip_channels: S, also the width of the output features (the head's ``in_features``).
        kernel_size: taps of each dilated convolution.
        dilation_cycle: dilations restart at 1 every ``dilation_cycle`` layers.
        cond_features: width of the conditioning features (e.g. the number of speakers).
        bins: bins per frame, passed by the runner; must be 1 (one sample per frame).
        context: passed by the runner for upsampling tiers; WaveNet has none.

    Raises:
        ValueError: a size < 1, ``bins != 1`` or ``context``.
    """
    if bins != 1:
        raise ValueError(f"wavenet: models one value per frame (a waveform representation such as mu_law), got bins={bins}")
    if context:
        raise ValueError("wavenet: has no multiscale tiers (no upsampling tier with a context); leave tiers.layers unset")
    if min(layers, residual_channels, skip_channels, kernel_size, dilation_cycle) < 1:
        raise ValueError(
            f"wavenet: layers, residual_channels, skip_channels, kernel_size and dilation_cycle must be >= 1, "
            f"got {layers}, {residual_channels}, {skip_channels}, {kernel_size}, {dilation_cycle}"
        )
    blocks = [
        ResidualBlock(residual_channels, skip_channels, kernel_size, d, cond_features, residual=i < layers - 1)
        for i, d in enumerate(dilations(layers, dilation_cycle))
    ]
    return WaveNet(blocks, cond_features=cond_features)
