"""Causality of a backbone, checked by gradients in its own element order.

melforge factorises ``p(x) = Π_ij p(x_ij | x_<ij)`` in row-major order over ``(frames, bins)``
(seed 000 eq. 1): element ``(i, j)`` comes after every element of frames ``< i`` and after
``(i, j')`` for ``j' < j``. A backbone's features at ``(i, j)`` may therefore depend on ``x``
only at elements before ``(i, j)`` — on conditioning features and on an upsampling tier's context
``x_<g`` (seed 000 §5) it may depend in full.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .inputs import backbone_inputs, float64_copy, part_name


def row_major_order(frames: int, bins: int) -> torch.Tensor:
    """``(frames, bins)`` int64: the position ``n = i·bins + j`` of each element in melforge's
    element order (seed 000 eq. 1)."""
    return torch.arange(frames * bins).reshape(frames, bins)


#: Random inputs ``x`` tried before an element is declared not to read any earlier element (a
#: ReLU output layer can be inactive at one element for one ``x``, making its features constant).
TRIALS = 3


def check_causality(
    backbone: torch.nn.Module,
    *,
    frames: int,
    bins: int,
    batch: int | None = None,
    cond: torch.Tensor | None = None,
    context: torch.Tensor | None = None,
    elements: Iterable[tuple[int, int]] | None = None,
    seed: int = 0,
    trials: int = TRIALS,
) -> None:
    """Assert that ``backbone``'s features are causal in row-major order, by gradients.

    On a float64 copy in eval mode, with ``x ~ N(0, 1)`` of shape ``(batch, frames, bins)``,
    for each checked element ``(i, j)`` the gradient of a random projection ``v·h[0, i, j, :]``
    of its features is taken with respect to ``x``, ``cond`` and ``context``, and it is asserted
    that:

    * ``∂h_ij / ∂x_kl == 0`` exactly for every ``(k, l)`` at or after ``(i, j)``;
    * ``∂h_ij / ∂x_kl != 0`` for at least one earlier ``(k, l)`` (for ``(i, j) != (0, 0)``): the
      backbone reads its input. An element where this fails is re-checked on up to ``trials``
      fresh draws of ``x`` (its features may be locally constant, e.g. every unit of a ReLU
      output inactive), and fails only if it reads nothing earlier for all of them;
    * nothing reaches batch item 0 from the other batch items;
    * over all checked elements, ``cond`` and ``context`` (when used) reach the features.

    A backbone that takes conditioning or context gets random ones when none are given (see
    :func:`melforge.core.conformance.inputs.backbone_inputs`).

    Args:
        backbone: a :class:`melforge.core.backbone.Backbone` (not modified).
        frames, bins: the shape of ``x``; must suit the backbone (e.g. a centralized MelNet's
            ``bins``).
        batch: batch size (default: from ``cond`` / ``context``, else 2).
        cond: ``(batch, C)`` or ``(batch, frames, bins, C)`` conditioning features, or ``None``.
        context: ``(batch, frames, bins)`` context of an upsampling tier, or ``None``.
        elements: the ``(i, j)`` to check; default: every element (one backward pass each, so
            keep ``frames·bins`` small — a few dozen elements suffice).
        seed: seed of ``x`` and of the projection (trial ``t`` uses ``seed + t``).
        trials: draws of ``x`` for the "reads an earlier element" property (>= 1).

    Raises:
        AssertionError: a violated property; the message names the backbone, the element
            ``(i, j)`` and, for a dependence on the future, the first offending ``(k, l)``.
        ValueError: an element outside ``(frames, bins)``, ``trials < 1``, or from the
            backbone, for inputs it rejects.
    """
    if trials < 1:
        raise ValueError(f"causality: trials must be >= 1, got {trials}")
    name = part_name(backbone)
    model = float64_copy(backbone)
    batch, cond, context = backbone_inputs(
        backbone, frames=frames, bins=bins, batch=batch, cond=cond, context=context, seed=seed
    )
    todo = _elements(elements, frames, bins)
    given = [(label, t.clone().requires_grad_(True)) for label, t in zip(("cond", "context"), (cond, context)) if t is not None]
    reached = [False] * len(given)
    hidden = getattr(backbone, "hidden_size", None)
    for trial in range(trials):
        todo = _blind_elements(model, name, hidden, (batch, frames, bins), given, reached, todo, seed + trial)
        if not todo:
            break
    if todo:
        i, j = todo[0]
        raise AssertionError(
            f"causality: {name}: output features at element ({i}, {j}) depend on no earlier element of x "
            f"(every gradient is zero, for {trials} random x): the backbone does not read its input"
        )
    for (label, _), ok in zip(given, reached):
        if not ok:
            raise AssertionError(f"causality: {name}: the {label} given to the backbone never reaches its output features")


def _elements(elements: Iterable[tuple[int, int]] | None, frames: int, bins: int) -> list[tuple[int, int]]:
    """The elements to check (default: all of ``(frames, bins)``, row-major).

    Raises:
        ValueError: an element outside ``(frames, bins)``.
    """
    todo = [(i, j) for i in range(frames) for j in range(bins)] if elements is None else list(elements)
    for i, j in todo:
        if not (0 <= i < frames and 0 <= j < bins):
            raise ValueError(f"causality: element ({i}, {j}) is outside ({frames}, {bins})")
    return todo


def _blind_elements(
    model, name: str, hidden: int | None, shape: tuple[int, int, int], given: list, reached: list[bool],
    todo: list[tuple[int, int]], seed: int,
) -> list[tuple[int, int]]:
    """One trial on ``x ~ N(0, 1)`` of ``shape`` ``(batch, frames, bins)`` drawn from ``seed``:
    asserts every element of ``todo`` causal (:func:`_assert_causal`), marks in ``reached``
    which of ``given`` reach the features, and returns the elements (other than ``(0, 0)``) that
    read no earlier element of ``x``."""
    batch, frames, bins = shape
    order = row_major_order(frames, bins)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, frames, bins, generator=generator, dtype=torch.float64, requires_grad=True)
    h = _features(model, name, x, given, hidden=hidden)
    projection = torch.randn(h.shape[-1], generator=generator, dtype=torch.float64)
    inputs = [x] + [t for _, t in given]
    blind = []
    for i, j in todo:
        grads = torch.autograd.grad((h[0, i, j] * projection).sum(), inputs, retain_graph=True, allow_unused=True)
        gx = torch.zeros_like(x) if grads[0] is None else grads[0]
        _assert_causal(name, gx, order, i, j)
        n = i * bins + j
        if n > 0 and not (gx[0] != 0)[order < n].any():
            blind.append((i, j))
        for e, g in enumerate(grads[1:]):
            reached[e] = reached[e] or (g is not None and bool((g != 0).any()))
    return blind


def _features(model, name: str, x: torch.Tensor, given: list, hidden: int | None) -> torch.Tensor:
    """``model(x, cond, context)`` (``given``: ``("cond" | "context", tensor)`` pairs) with the
    shape and the dependence on ``x`` checked."""
    extras = dict(given)
    h = model(x, extras.get("cond"), extras.get("context"))
    batch, frames, bins = x.shape
    expected = (batch, frames, bins) + ((hidden,) if hidden is not None else tuple(h.shape[3:4]))
    if tuple(h.shape) != expected:
        raise AssertionError(f"causality: {name}: forward gave features of shape {tuple(h.shape)}, expected {expected}")
    if not h.requires_grad:
        raise AssertionError(f"causality: {name}: the features do not depend on x at all (no gradient)")
    return h


def _assert_causal(name: str, gx: torch.Tensor, order: torch.Tensor, i: int, j: int) -> None:
    """``gx = ∂(v·h[0, i, j]) / ∂x: (batch, frames, bins)`` is zero at and after ``(i, j)`` and
    on every other batch item."""
    bins = order.shape[1]
    future = (gx[0] != 0) & (order >= i * bins + j)
    if future.any():
        k, l = divmod(int(order[future].min()), bins)
        raise AssertionError(
            f"causality: {name}: output features at element ({i}, {j}) depend on x at element ({k}, {l}), "
            f"which is not before it in row-major order (seed 000 eq. 1); "
            f"|∂h[{i},{j}]·v / ∂x[{k},{l}]| = {float(gx[0, k, l].abs()):.3g}"
        )
    if gx.shape[0] > 1 and (gx[1:] != 0).any():
        b = int((gx[1:] != 0).flatten(1).any(dim=1).nonzero()[0]) + 1
        raise AssertionError(
            f"causality: {name}: output features at element ({i}, {j}) of batch item 0 depend on x of batch item {b}"
        )
