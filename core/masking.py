"""Right-padded batches of clips of different lengths: valid-frame masks and per-tier lengths.

A batch of variable-length clips is ``x: (batch, frames, bins)`` with ``lengths: (batch,)``
valid frames per row; frames ``lengths[b]:`` of row ``b`` are padding. Padding sits after the
clip, so an element's log-density under an autoregressive model that is causal in time never
depends on it; only a part that reads ahead in time (the context of an upsampling tier, seed
000 §5.1) must be told the lengths (:meth:`melforge.core.backbone.Backbone.forward_padded`).
"""

from __future__ import annotations

import torch


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``(batch, frames)`` bool, true on the valid frames ``t < lengths[b]``.

    Raises:
        ValueError: ``lengths`` not 1-D, or a length outside ``0..frames``.
    """
    if lengths.dim() != 1:
        raise ValueError(f"lengths: expected (batch,), got shape {tuple(lengths.shape)}")
    if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > frames):
        raise ValueError(f"lengths: expected values in 0..{frames}, got {lengths.tolist()}")
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


def scaled_lengths(lengths: torch.Tensor, frames: int, frames_g: int) -> torch.Tensor:
    """The valid frames of each row after the time axis was halved ``log2(frames / frames_g)``
    times by tier splits (seed 000 eq. 11): ``lengths · frames_g / frames``.

    Raises:
        ValueError: ``frames`` is not a power-of-two multiple of ``frames_g``, or a length is
            not a multiple of the factor (padding would then share a split row with data).
    """
    if frames % frames_g or (frames // frames_g) & (frames // frames_g - 1):
        raise ValueError(f"tier frames {frames_g} do not divide {frames} by a power of two")
    factor = frames // frames_g
    if bool((lengths % factor).any()):
        raise ValueError(f"lengths {lengths.tolist()} must be multiples of the tiers' time factor {factor}")
    return lengths // factor


def all_full(lengths: torch.Tensor | None, frames: int) -> bool:
    """Whether no row of a ``frames``-long batch has padding (``lengths`` ``None`` or all ``frames``)."""
    return lengths is None or bool((lengths == frames).all())
