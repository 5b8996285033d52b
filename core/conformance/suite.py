"""One call for a backbone + head: causality, then every supporting registered sampler against
teacher forcing and against ``reference``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from melforge.core.head import Head
from melforge.core.model import SpectrogramModel
from melforge.core.plugins import load_registries

from .causality import check_causality
from .heads import check_samples_finite
from .inputs import backbone_inputs, float64_copy
from .padding import check_padding
from .samplers import ATOL, check_sampler_log_prob, check_sampler_matches_reference

#: Temperature of the second (primed) draw of every sampler; the first is at τ = 1.
PRIMED_TEMPERATURE = 0.7


@dataclass
class ConformanceReport:
    """What :func:`check_backbone_and_samplers` checked.

    Attributes:
        samplers: names of the samplers checked, in registry order (``reference`` first).
        skipped: sampler name → why it does not support the pair (``Sampler.unsupported``).
    """

    samplers: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def check_backbone_and_samplers(
    backbone: torch.nn.Module,
    head: Head,
    *,
    frames: int,
    bins: int,
    cond: torch.Tensor | None = None,
    context: torch.Tensor | None = None,
    samplers: Sequence[str] | None = None,
    batch: int | None = None,
    prime_frames: int | None = None,
    elements: Iterable[tuple[int, int]] | None = None,
    seed: int = 0,
    atol: float = ATOL,
    registries=None,
) -> ConformanceReport:
    """Run the conformance kit on ``backbone`` + ``head`` (neither is modified).

    1. :func:`~melforge.core.conformance.causality.check_causality` on the backbone, then
       :func:`~melforge.core.conformance.padding.check_padding` (when ``frames >= 2``), then
       :func:`~melforge.core.conformance.heads.check_samples_finite` on the head.
    2. For every registered sampler that supports the pair in float64 on CPU
       (``Sampler.supports``; or exactly the ``samplers`` named), two draws of
       ``(batch, frames, bins)``: unprimed at τ = 1, and continuing ``prime_frames`` frames at
       τ = :data:`PRIMED_TEMPERATURE`; for each,
       :func:`~melforge.core.conformance.samplers.check_sampler_log_prob` (log-probability =
       teacher forcing) and, for every sampler but ``reference``,
       :func:`~melforge.core.conformance.samplers.check_sampler_matches_reference` (same draws
       and log-probability for the same seed). The prime is the first frames of a reference
       draw with another seed, so it lies in the head's support.

    A backbone that takes conditioning or context gets random ones when none are given.
    Cost: one backward pass per checked element, and ``frames·bins`` forward passes per
    reference draw — keep ``frames·bins`` to a few dozen.

    Args:
        backbone: a :class:`melforge.core.backbone.Backbone`.
        head: a :class:`melforge.core.head.Head` whose ``in_features`` is the backbone's
            ``hidden_size``.
        frames, bins: the spectrogram shape the checks use.
        cond: ``(batch, C)`` or ``(batch, frames, bins, C)``, or ``None``.
        context: ``(batch, frames, bins)`` of an upsampling tier, or ``None``.
        samplers: sampler names to check (each must support the pair); default: every
            registered one that does.
        batch: batch size (default: from ``cond`` / ``context``, else 2).
        prime_frames: frames primed in the second draw (default: 1 when ``frames > 1``; 0: the
            second draw is unprimed).
        elements: the elements the causality check visits (default: all).
        seed: seed of every random input and draw.
        atol: tolerance of the float64 comparisons (nats; normalised units for draws).
        registries: :class:`melforge.core.plugins.Registries` to take the samplers from
            (default: ``load_registries()``, i.e. built-ins and installed plugins).

    Returns:
        A :class:`ConformanceReport`: the samplers checked and those skipped with the reason.

    Raises:
        AssertionError: the first failed check (its message names the check, the part and the
            element or batch item), or a named sampler that does not support the pair.
        ValueError: the head does not fit the backbone, or inputs the backbone rejects.
    """
    if registries is None:
        registries = load_registries()
    batch, cond, context = backbone_inputs(
        backbone, frames=frames, bins=bins, batch=batch, cond=cond, context=context, seed=seed
    )
    check_causality(backbone, frames=frames, bins=bins, batch=batch, cond=cond, context=context,
                    elements=elements, seed=seed)
    if frames >= 2:
        check_padding(backbone, frames=frames, bins=bins, cond=cond, context=context, seed=seed, atol=atol)
    check_samples_finite(head, seed=seed)  # the head's own draws, float32 and float64, extreme parameters

    model = float64_copy(SpectrogramModel(backbone, head))
    report = _supporting_samplers(model, registries, samplers)
    _check_draws(model, report.samplers, frames=frames, bins=bins, batch=batch, cond=cond, context=context,
                 prime_frames=prime_frames, seed=seed, atol=atol, registries=registries)
    return report


def _check_draws(model: SpectrogramModel, names: list[str], *, frames: int, bins: int, prime_frames: int | None,
                 seed: int, **common) -> None:
    """Step 2 of :func:`check_backbone_and_samplers` for the samplers ``names``: an unprimed
    draw at τ = 1 and one continuing ``prime_frames`` frames (default 1 when ``frames > 1``) of
    a ``reference`` draw with seed ``seed + 1`` at τ = :data:`PRIMED_TEMPERATURE`, each against
    teacher forcing and, but for ``reference``, against ``reference``. ``common``: ``batch``,
    ``cond``, ``context``, ``atol``, ``registries``."""
    if prime_frames is None:
        prime_frames = 1 if frames > 1 else 0
    prime = None
    if prime_frames:
        first = check_sampler_log_prob(model, "reference", frames=frames, bins=bins, seed=seed + 1, **common)
        prime = first.x[:, :prime_frames]
    draws = [(None, 1.0), (prime, PRIMED_TEMPERATURE)]
    for name in names:
        for prime_, temperature in draws:
            kwargs = dict(frames=frames, bins=bins, prime=prime_, temperature=temperature, seed=seed, **common)
            check_sampler_log_prob(model, name, **kwargs)
            if name != "reference":
                check_sampler_matches_reference(model, name, **kwargs)


def _supporting_samplers(model: SpectrogramModel, registries, samplers: Sequence[str] | None) -> ConformanceReport:
    """The samplers to check on ``model`` (``reference`` first): the ``samplers`` named, or every
    registered one that supports it, with the others and the reason in ``skipped``.

    Raises:
        AssertionError: a named sampler does not support the model.
    """
    report = ConformanceReport()
    names = registries.sampler.names() if samplers is None else list(samplers)
    names = sorted(names, key=lambda n: n != "reference")
    for name in names:
        why = registries.sampler.get(name).factory.unsupported(model.backbone, model.head)
        if why is None:
            report.samplers.append(name)
        elif samplers is not None:
            raise AssertionError(f"sampler {name!r} was named but cannot sample this model: {why}")
        else:
            report.skipped[name] = why
    return report
