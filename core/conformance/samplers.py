"""Samplers against teacher forcing and against the ``reference`` sampler, in float64.

Two facts every sampler must satisfy for a model ``p(x) = Π_ij p(x_ij | x_<ij)`` (seed 000 eq. 1):

* the log-probability it reports for its draws equals the teacher-forced one,
  ``model.log_prob(x, cond, context)`` summed over the sampled (non-primed) elements — the
  sampler fed each element the same features a training pass would;
* for the same seed it draws exactly what ``reference`` (the whole network re-run per element)
  draws, because every sampler draws a frame's noise with ``head.draw_noise((batch, bins))`` in
  frame order (:mod:`melforge.core.sampler`).
"""

from __future__ import annotations

import torch
from melforge.core.model import SpectrogramModel
from melforge.core.plugins import load_registries
from melforge.core.sampler import Sampler, SampleRequest, SampleResult

from .inputs import float64_copy

#: Absolute tolerance, in nats (log-probabilities) and normalised units (draws), of the float64
#: comparisons.
ATOL = 1e-9


def _sampler(sampler: Sampler | str, registries=None) -> Sampler:
    if isinstance(sampler, Sampler):
        return sampler
    if registries is None:
        registries = load_registries()
    return registries.sampler.create(str(sampler))


def _label(sampler: Sampler | str, built: Sampler) -> str:
    """``'cached' (CachedSampler)`` for a name, ``CachedSampler`` for an instance."""
    return f"{sampler!r} ({type(built).__name__})" if isinstance(sampler, str) else type(built).__name__


def _draw(
    model: SpectrogramModel,
    sampler: Sampler,
    *,
    frames: int,
    bins: int,
    batch: int,
    cond: torch.Tensor | None,
    context: torch.Tensor | None,
    prime: torch.Tensor | None,
    temperature: float,
    seed: int,
) -> SampleResult:
    """One draw with a fresh generator seeded ``seed``, inputs in the model's dtype."""
    def cast(t):
        return None if t is None else t.detach().to(torch.float64)

    request = SampleRequest(
        batch=batch, frames=frames, bins=bins, temperature=temperature,
        generator=torch.Generator().manual_seed(seed), cond=cast(cond), prime=cast(prime), context=cast(context),
    )
    return model.sample(sampler, request)


def _check_result(result: SampleResult, label: str, batch: int, frames: int, bins: int, prime: torch.Tensor | None) -> int:
    """Shapes, finiteness, priming; returns the number of primed frames."""
    primed = 0 if prime is None else int(prime.shape[1])
    if tuple(result.x.shape) != (batch, frames, bins):
        raise AssertionError(f"sampler {label}: x has shape {tuple(result.x.shape)}, expected {(batch, frames, bins)}")
    if tuple(result.log_prob.shape) != (batch,):
        raise AssertionError(f"sampler {label}: log_prob has shape {tuple(result.log_prob.shape)}, expected ({batch},)")
    if not (torch.isfinite(result.x).all() and torch.isfinite(result.log_prob).all()):
        raise AssertionError(f"sampler {label}: non-finite values in x or log_prob")
    if result.sampled_elements != (frames - primed) * bins:
        raise AssertionError(
            f"sampler {label}: sampled_elements = {result.sampled_elements}, expected "
            f"({frames} frames - {primed} primed) x {bins} bins = {(frames - primed) * bins}"
        )
    if primed and not torch.equal(result.x[:, :primed], prime.to(result.x.dtype)):
        raise AssertionError(f"sampler {label}: the {primed} primed frames are not copied into x unchanged")
    return primed


def check_sampler_log_prob(
    model: SpectrogramModel,
    sampler: Sampler | str,
    *,
    frames: int,
    bins: int,
    batch: int = 1,
    cond: torch.Tensor | None = None,
    context: torch.Tensor | None = None,
    prime: torch.Tensor | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    atol: float = ATOL,
    registries=None,
) -> SampleResult:
    """Assert that ``sampler``'s log-probability of its draws equals teacher forcing (float64).

    Draws ``(batch, frames, bins)`` from a float64 copy of ``model`` and asserts, per batch item,
    ``|result.log_prob - model.log_prob(x, cond, context)[:, P:].sum()| <= atol`` (nats, summed
    over the ``(frames - P)·bins`` sampled elements; ``P`` primed frames excluded), besides the
    result's shapes, finiteness, ``sampled_elements`` and that primed frames are copied unchanged.
    The reported log-probability is the untempered model's, whatever ``temperature``.

    Args:
        model: backbone + head (not modified).
        sampler: a :class:`~melforge.core.sampler.Sampler` or a registered sampler's name.
        frames, bins, batch: the shape drawn.
        cond: ``(batch, C)`` or ``(batch, frames, bins, C)``, or ``None``.
        context: ``(batch, frames, bins)`` of an upsampling tier, or ``None``.
        prime: ``(batch, P, bins)`` frames to continue from, or ``None``.
        temperature: τ > 0 of the draw.
        seed: seed of the draw's generator.
        atol: tolerance in nats on each batch item's sum.
        registries: where a sampler name is looked up (default: ``load_registries()``).

    Returns:
        The draw (float64).

    Raises:
        AssertionError: a mismatch (the message gives both values and the batch item).
        SamplerError: the sampler does not support the model.
    """
    built = _sampler(sampler, registries)
    label = _label(sampler, built)
    sampler = built
    model64 = float64_copy(model)
    result = _draw(model64, sampler, frames=frames, bins=bins, batch=batch, cond=cond, context=context,
                   prime=prime, temperature=temperature, seed=seed)
    primed = _check_result(result, label, batch, frames, bins, prime)
    with torch.no_grad():
        cond64 = None if cond is None else cond.detach().to(torch.float64)
        context64 = None if context is None else context.detach().to(torch.float64)
        teacher = model64.log_prob(result.x, cond64, context64)[:, primed:].sum(dim=(1, 2))  # (batch,)
    diff = (result.log_prob - teacher).abs()
    if not bool((diff <= atol).all()):
        b = int(diff.argmax())
        raise AssertionError(
            f"sampler {label}: log-probability of its draw differs from the teacher-forced model.log_prob "
            f"for batch item {b}: {float(result.log_prob[b]):.12g} vs {float(teacher[b]):.12g} nats "
            f"(|diff| {float(diff[b]):.3g} > atol {atol:g}, over {result.sampled_elements} sampled elements, "
            f"temperature {temperature}, {primed} primed frames)"
        )
    return result


def check_sampler_matches_reference(
    model: SpectrogramModel,
    sampler: Sampler | str,
    *,
    frames: int,
    bins: int,
    batch: int = 1,
    cond: torch.Tensor | None = None,
    context: torch.Tensor | None = None,
    prime: torch.Tensor | None = None,
    temperature: float = 1.0,
    seed: int = 0,
    atol: float = ATOL,
    registries=None,
) -> None:
    """Assert that ``sampler`` draws what the ``reference`` sampler draws for the same seed.

    Both draw from the same float64 copy of ``model`` with generators seeded ``seed``; asserted:
    ``|x - x_ref| <= atol`` at every element and ``|log_prob - log_prob_ref| <= atol`` per batch
    item. Arguments as in :func:`check_sampler_log_prob`.

    Raises:
        AssertionError: the first element ``(i, j)`` in row-major order (and batch item) where
            the draws differ, with both values; or the log-probabilities differ.
        SamplerError: a sampler does not support the model.
    """
    built = _sampler(sampler, registries)
    label = _label(sampler, built)
    sampler = built
    reference = _sampler("reference", registries)
    model64 = float64_copy(model)
    kwargs = dict(frames=frames, bins=bins, batch=batch, cond=cond, context=context, prime=prime,
                  temperature=temperature, seed=seed)
    expected = _draw(model64, reference, **kwargs)
    result = _draw(model64, sampler, **kwargs)
    _check_result(result, label, batch, frames, bins, prime)
    diff = (result.x - expected.x).abs()  # (batch, frames, bins)
    bad = diff > atol
    if bool(bad.any()):
        first = int(bad.permute(1, 2, 0).flatten().nonzero()[0])  # row-major over (frames, bins), then batch
        n, b = divmod(first, batch)
        i, j = divmod(n, bins)
        raise AssertionError(
            f"sampler {label}: draw differs from the reference sampler's for the same seed {seed} at element "
            f"({i}, {j}) of batch item {b} (the first in row-major order): {float(result.x[b, i, j]):.12g} vs "
            f"{float(expected.x[b, i, j]):.12g} (|diff| {float(diff[b, i, j]):.3g} > atol {atol:g})"
        )
    lp = (result.log_prob - expected.log_prob).abs()
    if not bool((lp <= atol).all()):
        b = int(lp.argmax())
        raise AssertionError(
            f"sampler {label}: log_prob differs from the reference sampler's for the same seed {seed}, batch item {b}: "
            f"{float(result.log_prob[b]):.12g} vs {float(expected.log_prob[b]):.12g} nats (|diff| {float(lp[b]):.3g})"
        )
