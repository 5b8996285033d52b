"""A likelihood head against a ``torch.distributions`` reference: its log-probability, its
noise protocol and its draws.

The caller says how the head's parameters define a distribution, e.g. for the GMM head
(seed 000 eq. 2–5)::

    def gmm(params):
        mu, log_sigma, log_pi = head.constrain(params)
        return D.MixtureSameFamily(D.Categorical(logits=log_pi), D.Normal(mu, log_sigma.exp()))

and, for a head whose values are not the distribution's support (a categorical head over levels
in [-1, 1]), how an outcome of the distribution maps to the head's value (``to_value``, e.g.
``head.value_of``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from melforge.core.head import Head
from torch import distributions as D

from .inputs import float64_copy, part_name

#: ``params (..., num_params) -> Distribution`` with batch shape ``(...)``.
ToDistribution = Callable[[torch.Tensor], D.Distribution]
#: Outcomes of the reference distribution ``(...)`` → the head's values ``(...)``.
ToValue = Callable[[torch.Tensor], torch.Tensor]


def _setup(head: Head, to_distribution: ToDistribution, shape: tuple[int, ...], seed: int, scale: float):
    head64 = float64_copy(head)
    generator = torch.Generator().manual_seed(seed)
    params = scale * torch.randn(*shape, head.num_params, generator=generator, dtype=torch.float64)
    dist = to_distribution(params)
    if tuple(dist.batch_shape) != tuple(shape) or tuple(dist.event_shape) != ():
        raise AssertionError(
            f"head {part_name(head)}: the reference distribution has batch shape {tuple(dist.batch_shape)} and "
            f"event shape {tuple(dist.event_shape)}, expected {tuple(shape)} and () (one univariate per element)"
        )
    return head64, params, dist


def _reference_draws(dist: D.Distribution, draws: int, seed: int) -> torch.Tensor:
    """``(draws, ...)`` outcomes of ``dist`` from torch's global RNG seeded ``seed`` (restored after)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return dist.sample((draws,))


def check_head_log_prob(
    head: Head,
    to_distribution: ToDistribution,
    *,
    to_value: ToValue | None = None,
    shape: tuple[int, ...] = (3, 4),
    draws: int = 8,
    scale: float = 2.0,
    seed: int = 0,
    atol: float = 1e-9,
    rtol: float = 1e-9,
) -> None:
    """Assert ``head.log_prob(params, x) == to_distribution(params).log_prob(outcome)`` (nats,
    float64) on random parameters and on outcomes drawn from the reference.

    ``params ~ scale·N(0, 1)`` of shape ``(*shape, head.num_params)``; ``draws`` outcomes per
    element are drawn from the reference; the head sees ``x = to_value(outcome)`` (default: the
    outcome itself).

    Args:
        head: the head (not modified; a float64 copy is checked).
        to_distribution: builds the reference from ``params: (*shape, num_params)``; its batch
            shape must be ``shape`` and its event shape ``()``.
        to_value: maps outcomes ``(draws, *shape)`` to head values, e.g. level → value.
        shape: leading axes of the parameters, e.g. ``(batch, bins)``.
        draws: outcomes per element.
        scale: spread of the random parameters.
        seed: seed of the parameters and of the outcomes.
        atol, rtol: tolerances in nats.

    Raises:
        AssertionError: a shape mismatch, or the first element where the two differ (its index,
            the value, both log-probabilities).
    """
    head64, params, dist = _setup(head, to_distribution, shape, seed, scale)
    outcome = _reference_draws(dist, draws, seed)  # (draws, *shape)
    x = outcome if to_value is None else to_value(outcome)
    expected = dist.log_prob(outcome).to(torch.float64)
    with torch.no_grad():
        got = head64.log_prob(params.expand(draws, *params.shape), x.to(torch.float64))
    if got.shape != expected.shape:
        raise AssertionError(f"head {part_name(head)}: log_prob has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    bad = ~torch.isclose(got, expected, rtol=rtol, atol=atol)
    if bool(bad.any()):
        index = tuple(int(v) for v in bad.nonzero()[0])
        raise AssertionError(
            f"head {part_name(head)}: log_prob differs from the torch.distributions reference at (draw, *element) "
            f"{index}, x = {float(x[index]):.9g}: head {float(got[index]):.12g} vs reference "
            f"{float(expected[index]):.12g} nats"
        )


def check_head_sampling(
    head: Head,
    to_distribution: ToDistribution,
    *,
    to_value: ToValue | None = None,
    shape: tuple[int, ...] = (2, 3),
    draws: int = 4000,
    scale: float = 1.0,
    seed: int = 0,
    z: float = 6.0,
) -> None:
    """Assert the head's noise protocol and that its draws follow the reference (τ = 1).

    Asserted, on random parameters ``scale·N(0, 1)`` of shape ``(*shape, num_params)``:

    * ``draw_noise(shape, g)`` has shape ``(*shape, noise_width)``;
    * ``sample(params, τ, g)`` equals ``sample_from_noise(params, τ, draw_noise(shape, g'))`` for
      generators ``g``, ``g'`` seeded alike, at τ = 1 and τ = 0.5 (what lets every sampler draw
      the same values for a seed);
    * ``draws`` head draws per element are finite, and per element two statistics of them are
      within ``z`` standard errors of the same statistics of ``draws`` reference draws (mapped by
      ``to_value``): the mean value (location) and the mean ``head.log_prob`` of the draws
      (spread and shape: too wide or too narrow draws score lower or higher).

    Args:
        head: the head (not modified; a float64 copy is checked).
        to_distribution, to_value, shape, scale, seed: as in :func:`check_head_log_prob`.
        draws: draws per element from each side.
        z: allowed difference of the means in standard errors of their difference.

    Raises:
        AssertionError: the first failed property, naming the element, the statistic and both
            means.
    """
    head64, params, dist = _setup(head, to_distribution, shape, seed, scale)
    name = part_name(head)
    noise = head64.draw_noise(tuple(shape), torch.Generator().manual_seed(seed), torch.float64)
    if tuple(noise.shape) != tuple(shape) + (head.noise_width,):
        raise AssertionError(
            f"head {name}: draw_noise{tuple(shape)} has shape {tuple(noise.shape)}, "
            f"expected {tuple(shape) + (head.noise_width,)}"
        )
    with torch.no_grad():
        for temperature in (1.0, 0.5):
            a = head64.sample(params, temperature, torch.Generator().manual_seed(seed + 1))
            noise = head64.draw_noise(tuple(shape), torch.Generator().manual_seed(seed + 1), torch.float64)
            b = head64.sample_from_noise(params, temperature, noise)
            if not torch.equal(a, b):
                raise AssertionError(
                    f"head {name}: sample(params, {temperature}, g) differs from "
                    f"sample_from_noise(params, {temperature}, draw_noise(shape, g)) for the same seed"
                )
        ours = head64.sample(params.expand(draws, *params.shape), 1.0, torch.Generator().manual_seed(seed + 2))
    if tuple(ours.shape) != (draws, *shape) or not bool(torch.isfinite(ours).all()):
        raise AssertionError(f"head {name}: {draws} draws of shape {tuple(ours.shape)} (expected {(draws, *shape)}), or non-finite")
    outcome = _reference_draws(dist, draws, seed + 3)
    theirs = (outcome if to_value is None else to_value(outcome)).to(torch.float64)
    with torch.no_grad():
        batch_params = params.expand(draws, *params.shape)
        statistics = {
            "value": (ours, theirs),
            "log-probability under the head": (head64.log_prob(batch_params, ours), head64.log_prob(batch_params, theirs)),
        }
    for label, (a, b) in statistics.items():
        se = torch.sqrt((a.var(dim=0) + b.var(dim=0)) / draws)
        gap = (a.mean(dim=0) - b.mean(dim=0)).abs()
        bad = gap > z * se + 1e-12
        if bool(bad.any()):
            index = tuple(int(v) for v in bad.nonzero()[0])
            raise AssertionError(
                f"head {name}: at element {index} the mean {label} of {draws} head draws is "
                f"{float(a.mean(dim=0)[index]):.6g}, of the reference's draws {float(b.mean(dim=0)[index]):.6g} "
                f"({float(gap[index] / se[index]):.1f} standard errors apart, more than {z})"
            )


def check_samples_finite(
    head: Head,
    *,
    shape: tuple[int, ...] = (4, 8),
    draws: int = 2048,
    scales: tuple[float, ...] = (1.0, 4.0),
    temperatures: tuple[float, ...] = (1.0, 0.5),
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
    seed: int = 0,
) -> None:
    """Assert that the head's draws are finite: ``sample(params, τ, g)`` for ``draws`` draws of
    every element, on random parameters ``scale·N(0, 1)`` of shape ``(*shape, num_params)``
    (large scales reach the extremes of the parameters), at every temperature, in float32 (what
    training and the samplers use) and float64 (what the other checks use).

    Args:
        head: the head (not modified; copies in each dtype are checked).
        shape: leading axes of the parameters; with ``draws``, ``draws·prod(shape)`` values per case.
        scales, temperatures, dtypes: the cases.
        seed: seed of the parameters and the noise.

    Raises:
        AssertionError: names the head, the case (dtype, scale, temperature) and the first
            non-finite draw with its parameters.
    """
    name = part_name(head)
    for dtype in dtypes:
        part = copy.deepcopy(head).to(dtype)
        for scale in scales:
            generator = torch.Generator().manual_seed(seed)
            params = scale * torch.randn(*shape, head.num_params, generator=generator, dtype=dtype)
            batch = params.expand(draws, *params.shape)
            for temperature in temperatures:
                with torch.no_grad():
                    x = part.sample(batch, temperature, torch.Generator().manual_seed(seed + 1))
                bad = ~torch.isfinite(x)
                if bool(bad.any()):
                    index = tuple(int(v) for v in bad.nonzero()[0])
                    raise AssertionError(
                        f"head {name}: {int(bad.sum())} of {x.numel()} draws are NaN or inf ({str(dtype)[6:]}, "
                        f"parameters {scale:g}·N(0, 1), temperature {temperature}); the first, {float(x[index])}, "
                        f"at (draw, *element) {index} with parameters {params[index[1:]].tolist()}"
                    )
