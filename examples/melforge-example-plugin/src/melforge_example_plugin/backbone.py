"""A causal dilated-convolution backbone over the row-major flattened spectrogram.

The spectrogram ``x: (batch, frames, bins)`` is read as one sequence of ``N = frames·bins``
elements in melforge's element order (row-major, seed 000 eq. 1): element ``(i, j)`` is
position ``n = i·bins + j``. The input at ``n`` is ``x_{n-1}`` (zero at ``n = 0``), and a stack of
gated, residual, left-padded 1-D convolutions with dilations 1, 2, 4, … (WaveNet-style) gives
features at ``n`` that depend only on ``x_<n``: what every melforge head and the ``reference``
sampler need. It also implements the incremental-state protocol of
:class:`melforge.core.backbone.Backbone`, so the ``cached`` sampler draws in O(frames·bins·layers).

Module constants are the defaults of :func:`build_causal_conv` (and of the plugin's
``configs/backbone/causal_conv.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from melforge.core.backbone import Backbone
from melforge.core.sampler import SampleRequest

HIDDEN_SIZE = 32
LAYERS = 6
KERNEL_SIZE = 2


class CausalConv(Backbone):
    """Gated dilated causal convolutions over the row-major element sequence.

    Per layer ``l`` (dilation ``d = 2^l``, kernel ``k``), on ``h: (batch, H, N)``::

        a, g = conv_l(pad_left(h, d·(k-1)))      # (batch, 2H, N) split in two
        h    = h + res_l(tanh(a) · sigmoid(g))   # residual, 1×1 convolution

    Receptive field: ``1 + (k-1)·(2^L - 1)`` previous elements (:attr:`receptive_field`).

    Args:
        hidden_size: H, the width of every layer and of the output features.
        layers: L convolution layers.
        kernel_size: k taps per convolution.
        cond_features: width C of conditioning features (0: none); ``(batch, C)`` or
            ``(batch, frames, bins, C)``, projected and added to the input layer.
        context: an upsampling tier of a multiscale model: its context ``x_<g (batch, frames,
            bins)`` is read in full by a 3×3 convolution and added to the input layer.

    Raises:
        ValueError: ``hidden_size``, ``layers`` or ``kernel_size`` < 1, or ``cond_features`` < 0.
    """

    family = "causal_conv"
    incremental = True

    def __init__(
        self,
        hidden_size: int = HIDDEN_SIZE,
        layers: int = LAYERS,
        kernel_size: int = KERNEL_SIZE,
        cond_features: int = 0,
        context: bool = False,
    ):
        super().__init__()
        if hidden_size < 1 or layers < 1 or kernel_size < 1 or cond_features < 0:
            raise ValueError(
                "causal_conv: hidden_size, layers and kernel_size must be >= 1 and cond_features >= 0, "
                f"got {hidden_size}, {layers}, {kernel_size}, {cond_features}"
            )
        hidden = self.hidden_size = int(hidden_size)
        self.kernel_size = int(kernel_size)
        self.cond_features = int(cond_features)
        self.takes_context = bool(context)
        self.input = nn.Linear(1, hidden)  # x_{n-1} -> H
        self.cond = nn.Linear(self.cond_features, hidden, bias=False) if self.cond_features else None
        self.context_net = nn.Conv2d(1, hidden, 3, padding=1) if self.takes_context else None
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, 2 * hidden, self.kernel_size, dilation=2**l) for l in range(int(layers))
        )
        self.res = nn.ModuleList(nn.Conv1d(hidden, hidden, 1) for _ in range(int(layers)))

    @property
    def receptive_field(self) -> int:
        """How many previous elements the features of an element can see."""
        return 1 + (self.kernel_size - 1) * (2 ** len(self.convs) - 1)

    def conditioning(
        self, cond: torch.Tensor | None, context: torch.Tensor | None, shape: tuple[int, int, int]
    ) -> torch.Tensor | None:
        """The conditioning term of the input layer, ``(batch, N or 1, H)``, or ``None``.

        Args:
            cond: ``(batch, C)`` (broadcast over all elements) or ``(batch, frames, bins, C)``.
            context: ``(batch, frames, bins)``, the context ``x_<g`` of an upsampling tier.
            shape: ``(batch, frames, bins)`` of the tier.

        Raises:
            ValueError: ``cond`` / ``context`` missing where required, given where not, or of
                the wrong shape (the message names which).
        """
        batch, frames, bins = shape
        terms = []
        if self.cond is None:
            if cond is not None:
                raise ValueError("causal_conv: got conditioning features but cond_features=0")
        else:
            if cond is None or cond.shape[-1] != self.cond_features or cond.dim() not in (2, 4):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(
                    f"causal_conv: cond must be (batch, {self.cond_features}) or "
                    f"(batch, frames, bins, {self.cond_features}), got {got}"
                )
            z = self.cond(cond.to(self.input.weight.dtype))  # (B, H) or (B, T, F, H)
            terms.append(z[:, None] if z.dim() == 2 else z.reshape(batch, frames * bins, -1))
        if self.context_net is None:
            if context is not None:
                raise ValueError("causal_conv: got a context x_<g but this backbone was built without context=True")
        else:
            if context is None or tuple(context.shape) != shape:
                got = None if context is None else tuple(context.shape)
                raise ValueError(f"causal_conv: an upsampling tier needs context of shape {shape}, got {got}")
            c = self.context_net(context.to(self.input.weight.dtype).unsqueeze(1))  # (B, H, T, F)
            terms.append(c.flatten(2).transpose(1, 2))  # (B, N, H), row-major
        return sum(terms) if terms else None

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x: (batch, frames, bins)`` → features ``(batch, frames, bins, H)``; element
        ``(i, j)`` depends only on ``x`` before it in row-major order (and on ``cond`` and all
        of ``context``).

        Raises:
            ValueError: ``x`` not 3-D, or see :meth:`conditioning`.
        """
        if x.dim() != 3:
            raise ValueError(f"causal_conv: expected x of shape (batch, frames, bins), got {tuple(x.shape)}")
        batch, frames, bins = x.shape
        s = F.pad(x.reshape(batch, frames * bins), (1, 0))[:, :-1]  # (B, N): x_{n-1}, 0 at n = 0
        h = self.input(s.unsqueeze(-1))  # (B, N, H)
        z = self.conditioning(cond, context, (batch, frames, bins))
        if z is not None:
            h = h + z
        h = h.transpose(1, 2)  # (B, H, N)
        for conv, res in zip(self.convs, self.res):
            pad = conv.dilation[0] * (self.kernel_size - 1)
            a, g = conv(F.pad(h, (pad, 0))).chunk(2, dim=1)  # (B, H, N) each
            h = h + res(torch.tanh(a) * torch.sigmoid(g))
        return h.transpose(1, 2).reshape(batch, frames, bins, self.hidden_size)

    # --- incremental-state protocol (the ``cached`` sampler) ---

    def start(self, request: SampleRequest) -> "CausalConvState":
        """State for drawing ``request``: its conditioning term and, per layer, the history of
        that layer's inputs ``(batch, pad + N, H)`` (left ``pad = d·(k-1)`` zeros). A full
        history keeps the code short; Fast WaveNet would keep ring buffers of ``pad`` entries."""
        weight = self.input.weight
        n = request.frames * request.bins
        history = [
            torch.zeros(request.batch, conv.dilation[0] * (self.kernel_size - 1) + n, self.hidden_size,
                        dtype=weight.dtype, device=weight.device)
            for conv in self.convs
        ]
        z = self.conditioning(request.cond, request.context, (request.batch, request.frames, request.bins))
        last = torch.zeros(request.batch, dtype=weight.dtype, device=weight.device)
        return CausalConvState(z=z, history=history, bins=request.bins, last=last)

    def next_frame(self, state: "CausalConvState", i: int, prev_frame: torch.Tensor) -> None:
        """Keep ``x_{i-1, bins-1}``, the element before ``(i, 0)`` in row-major order."""
        state.last = prev_frame[:, -1]

    def next_element(self, state: "CausalConvState", i: int, j: int, prev_value: torch.Tensor) -> torch.Tensor:
        """Features ``(batch, H)`` of element ``(i, j)``: one step of every layer at
        ``n = i·bins + j`` from ``x_{n-1}`` and the stored inputs ``d, 2d, …`` elements back."""
        n = i * state.bins + j
        value = prev_value if j > 0 else state.last  # x_{n-1}: (B,)
        h = self.input(value.unsqueeze(-1))  # (B, H)
        if state.z is not None:
            h = h + (state.z[:, 0] if state.z.shape[1] == 1 else state.z[:, n])
        for conv, res, past in zip(self.convs, self.res, state.history):
            d = conv.dilation[0]
            top = d * (self.kernel_size - 1) + n  # position of n in the padded history
            past[:, top] = h
            window = past[:, top - d * (self.kernel_size - 1) : top + 1 : d]  # (B, k, H), oldest first
            y = torch.einsum("bkh,ohk->bo", window, conv.weight) + conv.bias  # (B, 2H)
            a, g = y.chunk(2, dim=-1)
            h = h + F.linear(torch.tanh(a) * torch.sigmoid(g), res.weight[:, :, 0], res.bias)
        return h


@dataclass
class CausalConvState:
    """Incremental state of :class:`CausalConv`: the conditioning term ``z`` (``(batch, N or 1,
    H)`` or ``None``), each layer's input history, bins per frame and ``x_{i-1, bins-1}``."""

    z: torch.Tensor | None
    history: list[torch.Tensor]
    bins: int
    last: torch.Tensor


def build_causal_conv(
    hidden_size: int = HIDDEN_SIZE,
    layers: int = LAYERS,
    kernel_size: int = KERNEL_SIZE,
    cond_features: int = 0,
    context: bool = False,
) -> CausalConv:
    """The registered factory of backbone ``causal_conv`` (config keys as in
    ``configs/backbone/causal_conv.yaml``; melforge's runner adds ``layers`` per tier,
    ``context=True`` for upsampling tiers and ``cond_features`` when conditioning is on).
    See :class:`CausalConv` for the arguments and errors."""
    return CausalConv(hidden_size, layers, kernel_size, cond_features, context)
