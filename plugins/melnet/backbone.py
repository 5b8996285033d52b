"""MelNet, one tier (seed 000 §3–5): time-delayed and frequency-delayed stacks, optionally the
centralized stack, and for an upsampling tier the feature-extraction network of its context.

Layer counting: ``layers = L`` means L layers of each stack (layer ``l`` of the time-delayed
stack feeds layer ``l`` of the frequency-delayed stack, Figure 3). The input projections
``W^t_0`` / ``W^f_0`` (and the conditioning projections ``W^t_z`` / ``W^f_z``) are layer 0 and not
counted; the output projection ``W_θ`` belongs to the head. Table 2's "12" is ``layers=12``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from melforge.core.backbone import Backbone
from melforge.core.sampler import SampleRequest

from .centralized import CentralizedLayer
from .checkpointing import maybe_checkpoint
from .feature_extraction import FeatureExtractionLayer, FeatureExtractionNetwork
from .frequency_delayed import FrequencyDelayedLayer
from .time_delayed import TimeDelayedLayer


def shift_time(x: torch.Tensor) -> torch.Tensor:
    """``x: (batch, frames, bins)`` → ``x_{i-1,j}`` (zeros at frame 0), same shape."""
    return F.pad(x, (0, 0, 1, 0))[:, :-1]


def shift_freq(x: torch.Tensor) -> torch.Tensor:
    """``x: (batch, frames, bins)`` → ``x_{i,j-1}`` (zeros at bin 0), same shape."""
    return F.pad(x, (1, 0))[..., :-1]


class MelNet(Backbone):
    """One tier of MelNet.

    Args:
        time_layers: the L time-delayed layers (:class:`TimeDelayedLayer`).
        frequency_layers: the L frequency-delayed layers (:class:`FrequencyDelayedLayer`).
        cond_features: width of conditioning features ``z`` (0: unconditional), eq. 8–9.
        feature_network: for an upsampling tier, the feature-extraction network of its context
            ``x_<g`` (§5.1); its output is projected onto both stacks' input layers like ``z``.
        central_layers: L :class:`CentralizedLayer` s (the centralized stack), or ``None``.
        bins: bins per frame; required with ``central_layers`` (its input maps a whole frame).
        checkpoint: gradient checkpointing per layer pair (activations recomputed in backward).

    Implements the incremental-state protocol (:class:`~melforge.core.backbone.Backbone`): per
    frame the time-delayed (and centralized) stack advances once, batched over all bins; per
    element the frequency-delayed stack advances one LSTM cell step, O(frames·bins) in all.

    Raises:
        ValueError: the stacks differ in depth or are empty, or ``central_layers`` without
            ``bins``.
    """

    family = "melnet"
    incremental = True

    def __init__(
        self,
        time_layers: list[TimeDelayedLayer],
        frequency_layers: list[FrequencyDelayedLayer],
        cond_features: int = 0,
        feature_network: FeatureExtractionNetwork | None = None,
        central_layers: list[CentralizedLayer] | None = None,
        bins: int | None = None,
        checkpoint: bool = False,
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
        self.checkpoint = bool(checkpoint)
        self.time_input = nn.Linear(1, hidden)  # W^t_0
        self.freq_input = nn.Linear(1, hidden)  # W^f_0
        if self.cond_features:
            self.time_cond = nn.Linear(self.cond_features, hidden, bias=False)  # W^t_z
            self.freq_cond = nn.Linear(self.cond_features, hidden, bias=False)  # W^f_z
        self.feature_network = feature_network
        self.takes_context = feature_network is not None
        if feature_network is not None:
            width = feature_network.hidden_size
            self.time_context = nn.Linear(width, hidden, bias=False)  # W^t_z for the context features
            self.freq_context = nn.Linear(width, hidden, bias=False)  # W^f_z for the context features
        self.time_layers = nn.ModuleList(time_layers)
        self.frequency_layers = nn.ModuleList(frequency_layers)
        self.central_layers = None
        self.bins = bins
        if central_layers is not None:
            if len(central_layers) != len(time_layers):
                raise ValueError(f"melnet: need {len(time_layers)} centralized layers, got {len(central_layers)}")
            if not bins:
                raise ValueError("melnet: the centralized stack needs bins (its input layer maps a whole frame)")
            self.central_input = nn.Linear(int(bins), hidden)  # W^c_0
            self.central_layers = nn.ModuleList(central_layers)

    @property
    def layers(self) -> int:
        return len(self.time_layers)

    @property
    def centralized(self) -> bool:
        return self.central_layers is not None

    def conditioning(
        self, cond: torch.Tensor | None, context: torch.Tensor | None, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The conditioning terms of the input layers, ``(W^t_z z, W^f_z z)`` (eq. 8–9), each
        ``(batch, frames, bins, H)`` or broadcastable to it (``(batch, 1, 1, H)`` for a per-item
        ``z`` such as a one-hot speaker), summed over ``cond`` and the context's features.

        Args:
            cond: ``(batch, C)`` (broadcast along time and frequency, §4.3) or
                ``(batch, frames, bins, C)``, or ``None``.
            context: ``x_<g: (batch, frames, bins)`` of an upsampling tier, or ``None``.
            lengths: ``(batch,)`` valid frames of a right-padded batch, or ``None``.

        Raises:
            ValueError: ``cond`` or ``context`` given to a tier that takes none, missing where
                required, or of the wrong width.
        """
        terms: list[tuple[torch.Tensor, torch.Tensor]] = []
        if not self.cond_features:
            if cond is not None:
                raise ValueError("melnet: got conditioning features but cond_features=0")
        else:
            if cond is None:
                raise ValueError(f"melnet: expects conditioning features of width {self.cond_features}")
            if cond.shape[-1] != self.cond_features:
                raise ValueError(
                    f"melnet: conditioning width {cond.shape[-1]} != cond_features {self.cond_features}"
                )
            if cond.dim() == 2:  # (batch, C): broadcast along time and frequency (§4.3)
                cond = cond[:, None, None, :]
            terms.append((self.time_cond(cond), self.freq_cond(cond)))
        if self.feature_network is None:
            if context is not None:
                raise ValueError("melnet: got a context x_<g but this is an initial tier (no feature-extraction network)")
        else:
            if context is None:
                raise ValueError("melnet: an upsampling tier needs its context x_<g of shape (batch, frames, bins)")
            feats = self.feature_network(context, lengths)  # (B, T, F, H_fe), §5.1
            terms.append((self.time_context(feats), self.freq_context(feats)))
        if not terms:
            return None
        return sum(t for t, _ in terms), sum(f for _, f in terms)

    def forward_padded(
        self, x: torch.Tensor, cond: torch.Tensor | None, context: torch.Tensor | None, lengths: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`forward` on a right-padded batch (see
        :meth:`melforge.core.backbone.Backbone.forward_padded`) in one pass: the stacks are
        causal in time, and the feature-extraction network runs its backward-in-time RNN over
        each clip's valid frames only."""
        return self.forward(x, cond, context, lengths=lengths)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x: (batch, frames, bins)`` → ``h^f[L]: (batch, frames, bins, H)``, where position
        ``(i, j)`` depends only on ``x_<ij`` (row-major), ``cond`` and all of ``context``
        (of its own clip, when ``lengths: (batch,)`` gives the valid frames of a padded batch).

        Raises:
            ValueError: ``x`` not 3-D, ``context`` of another shape, or see :meth:`conditioning`.
        """
        if x.dim() != 3:
            raise ValueError(f"melnet: expected x of shape (batch, frames, bins), got {tuple(x.shape)}")
        if context is not None and context.shape != x.shape:
            raise ValueError(f"melnet: context shape {tuple(context.shape)} != tier shape {tuple(x.shape)}")
        h_t = self.time_input(shift_time(x).unsqueeze(-1))  # (B, T, F, H), eq. 8
        h_f = self.freq_input(shift_freq(x).unsqueeze(-1))  # (B, T, F, H), eq. 9
        z = self.conditioning(cond, context, lengths)
        if z is not None:
            h_t = h_t + z[0]
            h_f = h_f + z[1]
        h_c = None
        if self.central_layers is not None:
            if x.shape[2] != self.bins:
                raise ValueError(f"melnet: the centralized stack was built for {self.bins} bins, got {x.shape[2]}")
            h_c = self.central_input(shift_time(x))  # (B, T, H)
            if z is not None:
                h_c = h_c + z[0].mean(dim=2)  # the time-stack conditioning, averaged over bins
        for l in range(self.layers):
            if h_c is None:
                h_t, h_f = maybe_checkpoint(self._pair_step(l), self.checkpoint and self.training, h_t, h_f)
            else:
                h_t, h_f, h_c = maybe_checkpoint(
                    self._pair_step(l), self.checkpoint and self.training, h_t, h_f, h_c
                )
        return h_f

    def _pair_step(self, l: int):
        """Layer ``l`` of every stack as one function (the unit of gradient checkpointing)."""
        time_layer, freq_layer = self.time_layers[l], self.frequency_layers[l]
        central_layer = self.central_layers[l] if self.central_layers is not None else None

        def step(h_t, h_f, h_c=None):
            h_t = time_layer(h_t)  # eq. 6
            if central_layer is None:
                return h_t, freq_layer(h_f, h_t)  # eq. 7
            h_c = central_layer(h_c)
            return h_t, freq_layer(h_f, h_t + h_c.unsqueeze(2)), h_c

        return step

    # --- cached sampling: one frame of the time-delayed (and centralized) stack at a time ---

    def start_frames(self) -> dict:
        """Empty per-frame RNN states for :meth:`time_frame` (time-RNN and centralized states)."""
        return {"time": [None] * self.layers, "central": [None] * self.layers}

    def time_frame(
        self, prev_frame: torch.Tensor, z_t: torch.Tensor | None, states: dict
    ) -> list[torch.Tensor]:
        """The inputs of frame ``i`` that the frequency-delayed stack receives from the frame
        side, one per layer: ``h^t_i[l]`` (plus ``h^c_i[l]`` with the centralized stack).

        Args:
            prev_frame: ``x_{i-1}: (batch, bins)`` (zeros at frame 0).
            z_t: frame ``i`` of the time-stack conditioning, ``(batch, bins, H)`` or
                ``(batch, 1, H)``, or ``None``.
            states: from :meth:`start_frames`, updated in place.

        Returns:
            L tensors ``(batch, bins, H)``.
        """
        h = self.time_input(prev_frame.unsqueeze(-1))  # (B, F, H)
        if z_t is not None:
            h = h + z_t
        h_c = None
        if self.central_layers is not None:
            h_c = self.central_input(prev_frame)  # (B, H)
            if z_t is not None:
                h_c = h_c + z_t.mean(dim=1)
        rows = []
        for l, layer in enumerate(self.time_layers):
            h, states["time"][l] = layer.step(h, states["time"][l])
            if h_c is None:
                rows.append(h)
            else:
                h_c, states["central"][l] = self.central_layers[l].step(h_c, states["central"][l])
                rows.append(h + h_c.unsqueeze(1))
        return rows

    # --- incremental-state protocol (the cached sampler; seed 000 §4, eq. 6–9) ---

    def start(self, request: SampleRequest) -> "MelNetState":
        """State for drawing ``request``: its conditioning terms (eq. 8–9, computed once, the
        context through the feature-extraction network) and empty RNN states."""
        dtype = next(self.parameters()).dtype
        context = None if request.context is None else request.context.to(dtype)
        return MelNetState(z=self.conditioning(request.cond, context), frame_states=self.start_frames())

    def next_frame(self, state: "MelNetState", i: int, prev_frame: torch.Tensor) -> None:
        """Run the time-delayed (and centralized) stack for frame ``i`` on ``x_{i-1}``, and
        restart the frequency-delayed stack (its state lives within a frame)."""
        z_t = frame_of(state.z[0], i) if state.z is not None else None
        state.rows = self.time_frame(prev_frame, z_t, state.frame_states)
        state.zf = frame_of(state.z[1], i) if state.z is not None else None  # (B, F or 1, H)
        state.cells = [layer.initial_state(prev_frame.shape[0]) for layer in self.frequency_layers]

    def next_element(self, state: "MelNetState", i: int, j: int, prev_value: torch.Tensor) -> torch.Tensor:
        """``h^f_ij[L]: (batch, H)``: one LSTM cell step per frequency-delayed layer on
        ``x_{i,j-1}`` (eq. 7, 9)."""
        h_f = self.freq_input(prev_value.unsqueeze(-1))  # (B, H)
        if state.zf is not None:
            h_f = h_f + (state.zf[:, 0] if state.zf.shape[1] == 1 else state.zf[:, j])
        for l, layer in enumerate(self.frequency_layers):
            h_f, state.cells[l] = layer.step(h_f, state.rows[l][:, j], state.cells[l])
        return h_f

    def teacher_frame(self, state: "MelNetState", i: int, frame: torch.Tensor) -> None:
        """Nothing to do: the next frame sees a primed frame only through the time-delayed
        stack, which :meth:`next_frame` feeds with it."""


@dataclass
class MelNetState:
    """MelNet's incremental state: conditioning terms ``z = (W^t_z z, W^f_z z)`` (or ``None``),
    the per-frame RNN states of :meth:`MelNet.time_frame`, and within the current frame its
    frame-side inputs ``rows``, frequency-stack conditioning ``zf`` and LSTM cell states."""

    z: Any
    frame_states: dict
    rows: list | None = None
    zf: torch.Tensor | None = None
    cells: list | None = None


def frame_of(z: torch.Tensor, i: int) -> torch.Tensor:
    """Frame ``i`` of a projected conditioning term ``(batch, frames or 1, bins or 1, H)`` as
    ``(batch, bins or 1, H)``."""
    return z[:, 0] if z.shape[1] == 1 else z[:, i]


def build_melnet(
    hidden_size: int = 64,
    layers: int = 2,
    cond_features: int = 0,
    context: bool = False,
    feature_layers: int | None = None,
    centralized: bool = False,
    bins: int | None = None,
    checkpoint: bool = False,
) -> MelNet:
    """One MelNet tier of ``layers`` time-/frequency-delayed layer pairs of width ``hidden_size``
    (seed 000 Table 2: hidden size 512; 12–16 layers in the initial tier, 2–6 in upsampling tiers).

    Args:
        hidden_size: H for every RNN state, residual and projection (Appendix A).
        layers: L layer pairs.
        cond_features: width of ``z`` (e.g. the number of speakers for a one-hot speaker id).
        context: an upsampling tier: add a feature-extraction network over ``x_<g`` (§5.1).
        feature_layers: its layers (default: ``layers``).
        centralized: add the centralized stack (needs ``bins``).
        bins: bins per frame of this tier.
        checkpoint: gradient checkpointing per layer.

    Raises:
        ValueError: ``hidden_size``, ``layers`` or ``feature_layers`` < 1, or ``centralized``
            without ``bins``.
    """
    if hidden_size < 1 or layers < 1:
        raise ValueError(f"melnet: hidden_size and layers must be >= 1, got {hidden_size}, {layers}")
    feature_network = None
    if context:
        n_fe = layers if feature_layers is None else int(feature_layers)
        if n_fe < 1:
            raise ValueError(f"melnet: feature_layers must be >= 1, got {n_fe}")
        feature_network = FeatureExtractionNetwork(
            [FeatureExtractionLayer(hidden_size) for _ in range(n_fe)], checkpoint=checkpoint
        )
    return MelNet(
        [TimeDelayedLayer(hidden_size) for _ in range(layers)],
        [FrequencyDelayedLayer(hidden_size) for _ in range(layers)],
        cond_features=cond_features,
        feature_network=feature_network,
        central_layers=[CentralizedLayer(hidden_size) for _ in range(layers)] if centralized else None,
        bins=bins,
        checkpoint=checkpoint,
    )
