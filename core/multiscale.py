"""The multiscale model (seed 000 §5): G tiers, each a separate network, ``p(x) = Π_g p(x_g | x_<g)``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .masking import scaled_lengths
from .model import SpectrogramModel
from .sampler import SampleRequest, SampleResult, Sampler
from .tiers import TierSchedule, interleave, tier_axis


@dataclass
class MultiscaleSample(SampleResult):
    """A :class:`SampleResult` with the tiers it was built from.

    Attributes:
        tiers: ``[x_1, …, x_G]``, tier ``g`` as ``(batch, frames_g, bins_g)``.
        tier_log_probs: ``(batch,)`` log-density in nats of each tier's sampled elements.
        tier_sampled_elements: sampled elements per batch item in each tier.
    """

    tiers: list[torch.Tensor] | None = None
    tier_log_probs: list[torch.Tensor] | None = None
    tier_sampled_elements: list[int] | None = None


class MultiscaleModel(nn.Module):
    """G tiers with separate parameters ``ψ_g`` (eq. 10); tier 1 is unconditional, tier ``g > 1``
    reads its context ``x_<g`` (through its backbone's feature-extraction network, §5.1). One
    tier is an ordinary single-tier model.

    Args:
        tiers: ``[model_1, …, model_G]``; ``model_1.backbone.takes_context`` must be false and
            every other tier's true.

    Raises:
        ValueError: no tiers, or a tier that does (not) take a context where it must (not).
    """

    def __init__(self, tiers: list[SpectrogramModel]):
        super().__init__()
        if not tiers:
            raise ValueError("multiscale model: need at least one tier")
        for g, tier in enumerate(tiers, start=1):
            takes = bool(tier.backbone.takes_context)
            if takes != (g > 1):
                role = "an upsampling tier must take" if g > 1 else "the initial tier must not take"
                raise ValueError(f"multiscale model: tier {g}: {role} a context x_<g")
        self.tiers = nn.ModuleList(tiers)
        self.schedule = TierSchedule(len(tiers))

    @property
    def n_tiers(self) -> int:
        return len(self.tiers)

    @property
    def cond_features(self) -> int:
        return int(self.tiers[0].backbone.cond_features)

    def tier_log_probs(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        tiers: list[int] | None = None,
        lengths: torch.Tensor | None = None,
    ) -> dict[int, torch.Tensor]:
        """Per-element log-density of each tier under teacher forcing.

        Args:
            x: ``(batch, frames, bins)``; frames and bins must divide evenly (see
                :meth:`TierSchedule.check`).
            cond: ``(batch, C)`` or ``None`` (the same ``z`` for every tier).
            tiers: 1-based tiers to evaluate (default: all).
            lengths: ``(batch,)`` valid frames per row of a right-padded batch (multiples of
                the schedule's ``time_factor``), or ``None``: the valid elements' densities
                then equal those of each clip alone, and padded elements are 0.

        Returns:
            ``{g: (batch, frames_g, bins_g)}`` log ``p(x_g | x_<g)`` in nats per element.

        Raises:
            ValueError: a shape that does not divide into the tiers, or lengths that are not
                multiples of ``time_factor``.
        """
        parts = self.schedule.split(x)
        wanted = range(1, self.n_tiers + 1) if tiers is None else tiers
        out = {}
        for g in wanted:
            x_g, context = parts[g - 1]
            tier_lengths = None if lengths is None else scaled_lengths(lengths, x.shape[1], x_g.shape[1])
            out[g] = self.tiers[g - 1].log_prob(x_g, cond, context, tier_lengths)
        return out

    def tier_nll_sums(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        tiers: list[int] | None = None,
        lengths: torch.Tensor | None = None,
    ) -> dict[int, tuple[torch.Tensor, int]]:
        """``{g: (summed NLL in nats over the valid elements of tier g, their count)}``: the
        NLL accounting of a padded batch (arguments as in :meth:`tier_log_probs`)."""
        out = {}
        for g, lp in self.tier_log_probs(x, cond, tiers, lengths).items():
            if lengths is None:
                count = lp.numel()
            else:
                count = int(scaled_lengths(lengths, x.shape[1], lp.shape[1]).sum()) * lp.shape[2]
            out[g] = (-lp.sum(), count)
        return out

    def tier_nlls(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        tiers: list[int] | None = None,
        lengths: torch.Tensor | None = None,
    ) -> dict[int, torch.Tensor]:
        """``{g: scalar}`` mean NLL of tier ``g`` in nats per valid element of that tier
        (arguments as in :meth:`tier_log_probs`; padding is not counted)."""
        return {g: total / count for g, (total, count) in self.tier_nll_sums(x, cond, tiers, lengths).items()}

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x) = Σ_g log p(x_g | x_<g)`` (eq. 10), summed over elements: ``(batch,)`` nats."""
        return sum(lp.sum(dim=(1, 2)) for lp in self.tier_log_probs(x, cond).values())

    def nll(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Mean NLL in nats per element of the whole spectrogram (a scalar)."""
        return -self.log_prob(x, cond).sum() / x.numel()

    @torch.no_grad()
    def sample(
        self,
        samplers: Sampler | list[Sampler],
        *,
        batch: int,
        frames: int,
        bins: int,
        temperature: float | list[float] = 1.0,
        generator: torch.Generator | None = None,
        cond: torch.Tensor | None = None,
        prime: torch.Tensor | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> MultiscaleSample:
        """Sample coarse to fine (§5.2): tier 1 unconditionally, then each tier ``g`` given
        ``x_<g``, interleaving it into the context, ``x_<g+1 = interleave(x_g, x_<g)`` (eq. 12).
        Every tier is generated autoregressively, element by element.

        Args:
            samplers: the sampler of every tier, or one for all
                (:func:`melforge.core.sampler.select_sampler` picks them).
            batch, frames, bins: shape of the full spectrogram ``(batch, frames, bins)``.
            temperature: biasing (seed 000 §6), one value for every tier or one per tier.
            generator: torch RNG.
            cond: ``(batch, C)`` conditioning (e.g. one-hot speaker), given to every tier.
            prime: ``(batch, P, bins)`` real frames to continue (priming, §6); ``P`` must be a
                multiple of the schedule's ``time_factor`` so that each tier receives whole
                frames. In every tier the primed frames are copied, so the first ``P`` frames
                of the output equal ``prime`` exactly.
            progress: ``progress(g, n)`` after tier ``g``'s sampler finishes ``n`` more frames.

        Raises:
            ValueError: a shape that does not divide into the tiers, a bad ``prime``, or a
                wrong number of temperatures or samplers.
        """
        if not isinstance(samplers, (list, tuple)):
            samplers = [samplers] * self.n_tiers
        if len(samplers) != self.n_tiers:
            raise ValueError(f"samplers: give one or {self.n_tiers} (one per tier), got {len(samplers)}")
        shapes = self.schedule.shapes(frames, bins)
        temps = list(temperature) if isinstance(temperature, (list, tuple)) else [float(temperature)] * self.n_tiers
        if len(temps) != self.n_tiers:
            raise ValueError(f"temperature: give one value or {self.n_tiers} (one per tier), got {len(temps)}")
        primes: list[torch.Tensor | None] = [None] * self.n_tiers
        if prime is not None:
            SampleRequest(batch, frames, bins, prime=prime).validate()
            if prime.shape[1] % self.schedule.time_factor:
                raise ValueError(
                    f"prime: {prime.shape[1]} frames is not a multiple of {self.schedule.time_factor}, "
                    f"so it cannot be split into whole frames of {self.n_tiers} tiers"
                )
            if prime.shape[1]:
                primes = [x_g for x_g, _ in self.schedule.split(prime)]
        context: torch.Tensor | None = None
        tiers, log_probs, counts = [], [], []
        for g, tier in enumerate(self.tiers, start=1):
            frames_g, bins_g = shapes[g - 1]
            request = SampleRequest(
                batch, frames_g, bins_g, temperature=temps[g - 1], generator=generator,
                cond=cond, prime=primes[g - 1], context=context if g > 1 else None,
                progress=None if progress is None else functools.partial(progress, g), tier=g,
            )
            result = tier.sample(samplers[g - 1], request)
            tiers.append(result.x)
            log_probs.append(result.log_prob)
            counts.append(result.sampled_elements)
            context = result.x if g == 1 else interleave(result.x, context, tier_axis(g))  # x_<g+1
        return MultiscaleSample(
            x=context, log_prob=sum(log_probs), sampled_elements=sum(counts),
            tiers=tiers, tier_log_probs=log_probs, tier_sampled_elements=counts,
        )


def check_sample_shape(model: MultiscaleModel, bins: int, frames: int, prime_frames: int) -> None:
    """``sample.frames`` and ``sample.prime_frames`` fit the model's tiers.

    Raises:
        ValueError: names the key and the factor it must be a multiple of.
    """
    model.schedule.check(frames, bins, what="sample.frames")
    if prime_frames % model.schedule.time_factor or prime_frames >= frames:
        raise ValueError(
            f"sample.prime_frames={prime_frames}: must be a multiple of {model.schedule.time_factor} and "
            f"less than sample.frames={frames}"
        )
