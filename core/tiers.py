"""Multiscale tiers (seed 000 §5): ``split`` / ``interleave`` along alternating axes and the
tier schedule that says which axis each tier doubles.

Axes of a spectrogram ``x: (batch, frames, bins)``: ``"time"`` is dim -2 and ``"freq"`` dim -1.
Tier ``g`` (1-based; ``g = 1`` is the initial tier) of a ``G``-tier model comes from
``x_g, x_<g = split(x_<g+1, axis_g)`` (eq. 11) with ``x_<G+1 = x``: the even rows go to
``x_g``, the odd rows to the context ``x_<g``. Upsampling tiers alternate axes so that the
finest tiers double frequency and time in turn; tier ``g`` splits along frequency when ``g`` is
even and along time when ``g`` is odd. This matches Figure 5 (tiers 1 and 2 interleave along
frequency, tier 3 along time) and Figure 4 (Blizzard, six tiers: 32 × 50 → 64 × 100 after tier
3 → 256 × 200 after tier 6, i.e. three frequency and two time doublings).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

AXES = {"time": -2, "freq": -1}


def _dim(axis: str) -> int:
    if axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, got {axis!r}")
    return AXES[axis]


def split(x: torch.Tensor, axis: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Partition ``x: (..., frames, bins)`` into its even and odd rows along ``axis`` (eq. 11).

    Returns:
        ``(even, odd)``: rows ``0, 2, 4, …`` and ``1, 3, 5, …``; for an odd size the even part
        has one row more.

    Raises:
        ValueError: unknown ``axis`` or fewer than 2 rows along it.
    """
    dim = _dim(axis)
    if x.dim() < 2 or x.shape[dim] < 2:
        raise ValueError(f"split along {axis}: need at least 2 rows, got shape {tuple(x.shape)}")
    return x[..., 0::2, :] if dim == -2 else x[..., 0::2], x[..., 1::2, :] if dim == -2 else x[..., 1::2]


def interleave(even: torch.Tensor, odd: torch.Tensor, axis: str) -> torch.Tensor:
    """The inverse of :func:`split` (eq. 12): rows of ``even`` at ``0, 2, …`` and of ``odd`` at
    ``1, 3, …`` along ``axis``; ``interleave(*split(x, axis), axis)`` equals ``x`` exactly.

    Raises:
        ValueError: the shapes cannot come from one split (other axes differ, or the sizes along
            ``axis`` are not equal or one more for ``even``).
    """
    dim = _dim(axis)
    n_even, n_odd = even.shape[dim], odd.shape[dim]
    other_even = even.shape[:dim] + (even.shape[-1:] if dim == -2 else ())
    other_odd = odd.shape[:dim] + (odd.shape[-1:] if dim == -2 else ())
    if other_even != other_odd or n_even - n_odd not in (0, 1):
        raise ValueError(
            f"interleave along {axis}: shapes {tuple(even.shape)} and {tuple(odd.shape)} do not come from "
            "one split (other axes must agree; the even part has as many rows as the odd part or one more)"
        )
    shape = list(even.shape)
    shape[dim] = n_even + n_odd
    out = even.new_empty(shape)
    if dim == -2:
        out[..., 0::2, :] = even
        out[..., 1::2, :] = odd
    else:
        out[..., 0::2] = even
        out[..., 1::2] = odd
    return out


def tier_axis(g: int) -> str:
    """The axis tier ``g >= 2`` doubles: ``"freq"`` for even ``g``, ``"time"`` for odd ``g``."""
    if g < 2:
        raise ValueError(f"tier {g} has no split axis (the initial tier is 1)")
    return "freq" if g % 2 == 0 else "time"


@dataclass(frozen=True)
class TierSchedule:
    """How a ``(frames, bins)`` spectrogram is divided into ``tiers`` tiers.

    Attributes:
        tiers: G >= 1.
    """

    tiers: int

    def __post_init__(self):
        if self.tiers < 1:
            raise ValueError(f"tiers must be >= 1, got {self.tiers}")

    @property
    def axes(self) -> list[str | None]:
        """Split axis per tier, ``[None, axis_2, …, axis_G]``."""
        return [None] + [tier_axis(g) for g in range(2, self.tiers + 1)]

    @property
    def time_factor(self) -> int:
        """``frames`` must be a multiple of this (2 to the number of time splits)."""
        return 2 ** sum(a == "time" for a in self.axes)

    @property
    def freq_factor(self) -> int:
        """``bins`` must be a multiple of this (2 to the number of frequency splits)."""
        return 2 ** sum(a == "freq" for a in self.axes)

    def check(self, frames: int, bins: int, what: str = "spectrogram") -> None:
        """Raise ``ValueError`` naming ``what`` unless ``frames`` and ``bins`` divide evenly at
        every split (each tier must have the shape of its context)."""
        if frames % self.time_factor or bins % self.freq_factor or frames < self.time_factor:
            raise ValueError(
                f"{what}: {frames} frames × {bins} bins cannot be split into {self.tiers} tiers; frames must be a "
                f"positive multiple of {self.time_factor} and bins a multiple of {self.freq_factor}"
            )

    def shapes(self, frames: int, bins: int) -> list[tuple[int, int]]:
        """``(frames_g, bins_g)`` of tier ``g = 1..G`` (list index ``g - 1``)."""
        self.check(frames, bins)
        out = []
        for g in range(self.tiers, 1, -1):  # x_g has the shape of x_<g: half of x_<g+1
            if tier_axis(g) == "time":
                frames //= 2
            else:
                bins //= 2
            out.append((frames, bins))
        out.append((frames, bins))  # x_1 = x_<2
        return out[::-1]

    def split(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """``x: (batch, frames, bins)`` → ``[(x_1, None), (x_2, x_<2), …, (x_G, x_<G)]`` (eq. 11).

        Raises:
            ValueError: the shape does not divide evenly (see :meth:`check`).
        """
        self.check(x.shape[-2], x.shape[-1])
        out = []
        context = x
        for g in range(self.tiers, 1, -1):
            x_g, context = split(context, tier_axis(g))
            out.append((x_g, context))
        out.append((context, None))
        return out[::-1]

    def assemble(self, tiers: list[torch.Tensor]) -> torch.Tensor:
        """The inverse of :meth:`split`: ``[x_1, …, x_G]`` → ``x``, coarse to fine (eq. 12)."""
        if len(tiers) != self.tiers:
            raise ValueError(f"assemble: expected {self.tiers} tiers, got {len(tiers)}")
        x = tiers[0]
        for g in range(2, self.tiers + 1):
            x = interleave(tiers[g - 1], x, tier_axis(g))
        return x
