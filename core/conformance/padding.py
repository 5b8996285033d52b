"""Padded batches: a backbone's :meth:`~melforge.core.backbone.Backbone.forward_padded` gives
every valid element of a right-padded batch the features it has in its clip alone."""

from __future__ import annotations

import torch

from melforge.core.masking import frame_mask

from .inputs import backbone_inputs, float64_copy, part_name


def check_padding(
    backbone: torch.nn.Module,
    *,
    frames: int,
    bins: int,
    cond: torch.Tensor | None = None,
    context: torch.Tensor | None = None,
    seed: int = 0,
    atol: float = 1e-9,
) -> None:
    """Assert that padding is invisible to the valid elements of a padded batch.

    On a float64 copy in eval mode, a batch of ``frames``-frame rows whose lengths run from
    ``frames`` down to 1 (cycled over the batch) is evaluated with ``forward_padded``; for every
    row, the valid positions must equal ``forward`` on that row cropped to its length (its
    ``cond`` and ``context`` cropped alike) within ``atol``, and must not change when the padded
    frames of ``x`` (and of ``context``) are replaced by large random values.

    Args:
        backbone: a :class:`melforge.core.backbone.Backbone`.
        frames, bins: the padded batch's shape (``frames >= 2``).
        cond, context: as in :func:`melforge.core.conformance.causality.check_causality`
            (random ones when the backbone takes them and none are given).
        seed: seed of the random inputs.
        atol: tolerance of the float64 comparison.

    Raises:
        AssertionError: names the backbone, the row and its length.
        ValueError: ``frames < 2``.
    """
    if frames < 2:
        raise ValueError(f"check_padding: frames must be >= 2 to pad, got {frames}")
    model = float64_copy(backbone).eval()
    batch, cond, context = backbone_inputs(model, frames=frames, bins=bins, batch=None, cond=cond, context=context,
                                           seed=seed)
    gen = torch.Generator().manual_seed(seed + 7)
    x = torch.randn(batch, frames, bins, generator=gen, dtype=torch.float64)
    cond = None if cond is None else cond.double()
    context = None if context is None else context.double()
    lengths = torch.tensor([frames - (b % frames) for b in range(batch)])
    lengths[-1] = max(1, frames // 2)
    name = part_name(backbone)
    with torch.no_grad():
        padded = model.forward_padded(x, cond, context, lengths)
        valid = frame_mask(lengths, frames)
        noisy_x = torch.where(valid[..., None], x, 1e3 * torch.randn(x.shape, generator=gen, dtype=x.dtype))
        noisy_ctx = None if context is None else torch.where(
            valid[..., None], context, 1e3 * torch.randn(context.shape, generator=gen, dtype=context.dtype))
        noisy = model.forward_padded(noisy_x, cond, noisy_ctx, lengths)
        for b, n in enumerate(lengths.tolist()):
            z = None if cond is None else cond[b : b + 1] if cond.dim() == 2 else cond[b : b + 1, :n]
            ctx = None if context is None else context[b : b + 1, :n]
            alone = model(x[b : b + 1, :n], z, ctx)[0]
            err = float((padded[b, :n] - alone).abs().max())
            if err > atol:
                raise AssertionError(f"{name}: padded row {b} (length {n} of {frames}) differs from the clip alone "
                                     f"by {err:.3g} (atol {atol}): padding reaches valid elements")
            err = float((noisy[b, :n] - padded[b, :n]).abs().max())
            if err > atol:
                raise AssertionError(f"{name}: padded row {b} (length {n} of {frames}) changes by {err:.3g} when "
                                     f"its padded frames change: padding reaches valid elements")
