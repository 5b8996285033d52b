"""What the conformance checks feed a model: float64 copies and the inputs a backbone takes."""

from __future__ import annotations

import copy

import torch
from torch import nn

#: Batch size the checks use when neither ``cond`` nor ``context`` fixes it (two items, so that
#: mixing between batch items is caught).
DEFAULT_BATCH = 2


def float64_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` in float64 and eval mode (the caller's module is untouched)."""
    return copy.deepcopy(module).to(torch.float64).eval()


def part_name(part: object) -> str:
    """``"ClassName (family 'x')"`` for messages."""
    family = getattr(part, "family", "")
    return f"{type(part).__name__} (family {family!r})" if family else type(part).__name__


def backbone_inputs(
    backbone: nn.Module,
    *,
    frames: int,
    bins: int,
    batch: int | None = None,
    cond: torch.Tensor | None = None,
    context: torch.Tensor | None = None,
    seed: int = 0,
) -> tuple[int, torch.Tensor | None, torch.Tensor | None]:
    """The batch size, ``cond`` and ``context`` to check ``backbone`` with, in float64.

    A backbone that takes conditioning (``cond_features > 0``) gets random ``(batch, C)``
    features when ``cond`` is ``None``; an upsampling tier (``takes_context``) gets a random
    ``(batch, frames, bins)`` context when ``context`` is ``None``. Given tensors are cast to
    float64 and detached.

    Args:
        backbone: a :class:`melforge.core.backbone.Backbone`.
        frames, bins: the spectrogram shape the checks use.
        batch: batch size; default: the leading axis of ``cond`` / ``context``, else
            :data:`DEFAULT_BATCH`.
        cond: ``(batch, C)`` or ``(batch, frames, bins, C)``, or ``None``.
        context: ``(batch, frames, bins)``, or ``None``.
        seed: seed of the random features.

    Returns:
        ``(batch, cond, context)``.

    Raises:
        ValueError: ``cond`` / ``context`` disagree with each other or with ``batch`` on the
            batch size.
    """
    sizes = {int(t.shape[0]) for t in (cond, context) if t is not None}
    if batch is not None:
        sizes.add(int(batch))
    if len(sizes) > 1:
        raise ValueError(f"conformance: batch, cond and context disagree on the batch size: {sorted(sizes)}")
    batch = sizes.pop() if sizes else DEFAULT_BATCH
    generator = torch.Generator().manual_seed(seed + 7919)
    width = int(getattr(backbone, "cond_features", 0) or 0)
    if cond is None and width:
        cond = torch.randn(batch, width, generator=generator, dtype=torch.float64)
    if context is None and getattr(backbone, "takes_context", False):
        context = torch.randn(batch, frames, bins, generator=generator, dtype=torch.float64)
    cond = None if cond is None else cond.detach().to(torch.float64)
    context = None if context is None else context.detach().to(torch.float64)
    return batch, cond, context
