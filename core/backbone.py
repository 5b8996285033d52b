"""Base class of backbones: causal feature networks over spectrograms."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from .declared import check_declared, missing_attribute
from .sampler import SampleRequest


class Backbone(nn.Module, ABC):
    """A network whose output at element ``(i, j)`` depends only on ``x_<ij`` (row-major order,
    seed 000 eq. 1) and on optional conditioning features.

    A backbone built for an upsampling tier of a multiscale model (seed 000 §5) also takes the
    tier's context ``x_<g``, a ``(batch, frames, bins)`` tensor of the same shape as ``x`` that
    it may read in full (it is known before the tier is generated).

    **Incremental-state protocol** (what the ``cached`` sampler drives; a backbone that
    implements it sets :attr:`incremental`): elements are produced in row-major order, and for
    every frame ``i`` the sampler calls :meth:`next_frame` with ``x_{i-1}``, then, for a sampled
    frame, :meth:`next_element` once per bin ``j`` with ``x_{i,j-1}``, each returning the
    features of element ``(i, j)``; a primed frame is fed with :meth:`teacher_frame` instead.
    A sampler never looks inside the state.

    Attributes:
        family: the architecture's name (``"melnet"``, ``"wavenet"``, …); samplers declare the
            families they support.
        hidden_size: width of the output features.
        cond_features: width of the conditioning features ``z`` it accepts (0: none).
        takes_context: whether it is an upsampling tier (needs ``context``).
        incremental: whether it implements the incremental-state protocol.
    """

    family: ClassVar[str] = ""
    incremental: ClassVar[bool] = False
    hidden_size: int
    cond_features: int = 0
    takes_context: bool = False

    #: Attributes every backbone instance sets in ``__init__``, with their meaning (errors name
    #: a missing one: :mod:`melforge.core.declared`).
    DECLARED: ClassVar[dict[str, str]] = {
        "hidden_size": "the width of the features forward() returns (the head's in_features)",
    }

    def check_declared(self) -> None:
        """Raise :class:`~melforge.core.declared.MissingAttributeError` naming every attribute of
        :attr:`DECLARED` this backbone does not set (the registry calls it when it builds one)."""
        check_declared(self, "Backbone", self.DECLARED)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            raise missing_attribute(self, "Backbone", name, self.DECLARED) from None

    @abstractmethod
    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher-forced features.

        Args:
            x: ``(batch, frames, bins)`` spectrogram.
            cond: ``(batch, frames, bins, cond_features)`` or ``(batch, cond_features)``
                (broadcast over frames and bins), or ``None``.
            context: ``(batch, frames, bins)`` context ``x_<g`` of an upsampling tier, or ``None``.

        Returns:
            ``(batch, frames, bins, hidden_size)`` features, causal in row-major order.
        """

    def forward_padded(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None,
        context: torch.Tensor | None,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """:meth:`forward` on a right-padded batch of clips of different lengths.

        Args:
            x: ``(batch, frames, bins)``; frames ``lengths[b]:`` of row ``b`` are padding.
            cond, context: as in :meth:`forward` (``context`` padded like ``x``).
            lengths: ``(batch,)`` valid frames per row.

        Returns:
            ``(batch, frames, bins, hidden_size)``: at every valid position equal (up to
            rounding) to :meth:`forward` on that row cropped to its length; padded positions
            hold unspecified finite values.

        Without a context, causality (row-major) already makes padding invisible to the valid
        positions, so this is :meth:`forward`. With a context, which a backbone may read in
        full, the default runs :meth:`forward` once per distinct length on the rows cropped to
        it — exact for any backbone, slower; a backbone that can mask its look-ahead (MelNet's
        feature-extraction network packs its backward-in-time RNN) overrides this.
        """
        if context is None:
            return self.forward(x, cond, None)
        out = None
        for length in torch.unique(lengths).tolist():
            rows = (lengths == length).nonzero().flatten()
            n = int(length)
            z = None if cond is None else cond[rows] if cond.dim() == 2 else cond[rows, :n]
            h = self.forward(x[rows, :n], z, context[rows, :n])
            if out is None:
                out = h.new_zeros(x.shape[0], x.shape[1], x.shape[2], h.shape[-1])
            out[rows, :n] = h
        return out

    # --- incremental-state protocol (optional; see the class docstring) ---

    def start(self, request: SampleRequest) -> Any:
        """A fresh incremental state for drawing ``request`` (its ``cond`` and ``context`` are
        read here, once).

        Raises:
            NotImplementedError: the backbone does not implement the protocol.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement the incremental-state protocol")

    def next_frame(self, state: Any, i: int, prev_frame: torch.Tensor) -> None:
        """Advance ``state`` to frame ``i`` given ``prev_frame = x_{i-1}: (batch, bins)``
        (zeros at ``i = 0``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement the incremental-state protocol")

    def next_element(self, state: Any, i: int, j: int, prev_value: torch.Tensor) -> torch.Tensor:
        """Features ``(batch, hidden_size)`` of element ``(i, j)`` given
        ``prev_value = x_{i,j-1}: (batch,)`` (zeros at ``j = 0``); advances ``state``. Equal,
        up to rounding, to ``forward(x)[:, i, j]`` for the same ``x_<ij``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement the incremental-state protocol")

    def teacher_frame(self, state: Any, i: int, frame: torch.Tensor) -> None:
        """Feed a known frame ``x_i: (batch, bins)`` (a primed frame) after :meth:`next_frame`.
        The default steps :meth:`next_element` through its values; a backbone whose state
        between frames does not depend on the elements of a frame (MelNet's frequency-delayed
        stack restarts every frame) may skip that."""
        prev = torch.zeros_like(frame[:, 0])
        for j in range(frame.shape[1]):
            self.next_element(state, i, j, prev)
            prev = frame[:, j]

