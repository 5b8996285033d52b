"""Samplers, a kind of part: how an autoregressive model (backbone + head) is drawn from.

A sampler takes a :class:`~melforge.core.model.SpectrogramModel` and one
:class:`SampleRequest` and returns a :class:`SampleResult`. Built-ins (registered through the
``melforge_register_sampler`` hook like any plugin's): ``reference`` (the whole network re-run
for every element; any causal backbone, any head), ``cached`` (backbones that declare the
incremental-state protocol of :class:`~melforge.core.backbone.Backbone`; any head) and the
compiled ones of the MelNet and WaveNet plugins. :func:`select_sampler` picks the one a config
names, or the fastest that supports the (backbone, head) pair.

Every sampler draws a frame's noise with ``head.draw_noise((batch, bins), …)`` before that
frame's elements, in frame order, so that all samplers give the same draws for the same seed.
"""

from __future__ import annotations

import functools
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch


@dataclass(frozen=True)
class SampleRequest:
    """What to draw.

    Attributes:
        batch, frames, bins: output shape ``(batch, frames, bins)`` (for a waveform model,
            ``frames`` are samples and ``bins`` is 1).
        temperature: τ > 0, biasing (seed 000 §6); 1 is the model's distribution.
        generator: torch RNG for reproducible draws (``None``: the global one).
        cond: conditioning features ``(batch, C)`` (broadcast over frames and bins) or
            ``(batch, frames, bins, C)``, or ``None``.
        prime: ``(batch, P, bins)`` real frames to continue from, copied into the output
            unchanged (priming, seed 000 §6), or ``None``.
        context: ``(batch, frames, bins)`` context ``x_<g`` of an upsampling tier (§5), or ``None``.
        progress: called with the number of frames just sampled, after each frame (or block of
            frames) a sampler finishes; e.g. a progress bar's ``update``. ``None``: silent.
        tier: the 1-based tier of a multiscale model this draw is for (named in errors), or
            ``None`` (then an error says "the initial tier" or "an upsampling tier").
    """

    batch: int
    frames: int
    bins: int
    temperature: float = 1.0
    generator: torch.Generator | None = None
    cond: torch.Tensor | None = None
    prime: torch.Tensor | None = None
    context: torch.Tensor | None = None
    progress: Callable[[int], None] | None = None
    tier: int | None = None

    def validate(self) -> int:
        """Check the request; returns the number of primed frames ``P``.

        Raises:
            ValueError: a non-positive shape or temperature, ``prime`` not
                ``(batch, <= frames, bins)``, ``context`` not ``(batch, frames, bins)``, or
                ``cond`` whose leading axes do not match (each message names the field).
        """
        if self.batch < 1 or self.frames < 1 or self.bins < 1:
            raise ValueError(
                f"sample request: batch, frames and bins must be >= 1, got {self.batch}, {self.frames}, {self.bins}"
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature: must be > 0, got {self.temperature}")
        primed = 0
        prime = self.prime
        if prime is not None:
            if prime.dim() != 3 or prime.shape[0] != self.batch or prime.shape[2] != self.bins or prime.shape[1] > self.frames:
                raise ValueError(
                    f"prime: expected shape ({self.batch}, <= {self.frames}, {self.bins}), got {tuple(prime.shape)}"
                )
            primed = prime.shape[1]
        if self.context is not None and tuple(self.context.shape) != (self.batch, self.frames, self.bins):
            raise ValueError(
                f"context: expected shape ({self.batch}, {self.frames}, {self.bins}), got {tuple(self.context.shape)}"
            )
        cond = self.cond
        if cond is not None:
            ok = cond.shape[0] == self.batch and (
                cond.dim() == 2 or (cond.dim() == 4 and tuple(cond.shape[1:3]) == (self.frames, self.bins))
            )
            if not ok:
                raise ValueError(
                    f"cond: expected shape ({self.batch}, C) or ({self.batch}, {self.frames}, {self.bins}, C), "
                    f"got {tuple(cond.shape)}"
                )
        return primed


@dataclass
class SampleResult:
    """What a sampler returns.

    Attributes:
        x: ``(batch, frames, bins)`` sampled values (normalised features); primed frames included.
        log_prob: ``(batch,)`` summed log-probability in nats of the *sampled* elements under the
            untempered model (primed frames excluded).
        sampled_elements: number of elements per batch item that were sampled.
    """

    x: torch.Tensor
    log_prob: torch.Tensor
    sampled_elements: int


class WeightCache:
    """What a sampler extracted from a model's weights (e.g. a compiled sampler's transposed
    copies), kept until those weights change, so that a second ``sample()`` call on the same
    model pays no extraction.

    An entry is keyed by a module (weakly: it goes with the module) and stamped with every
    parameter's ``data_ptr``, ``_version`` (PyTorch bumps it on every in-place change: an
    optimiser step, ``load_state_dict``, ``copy_``), dtype, shape and device, plus the caller's
    ``key``; any difference re-extracts.

    Attributes:
        extractions: how many times an ``extract`` ran (a count for tests and benchmarks).
    """

    def __init__(self) -> None:
        self._entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.extractions = 0

    @staticmethod
    def stamp(modules: tuple[torch.nn.Module, ...]) -> tuple:
        """The identity and version of every parameter of ``modules``."""
        return tuple(
            (p.data_ptr(), p._version, p.dtype, tuple(p.shape), str(p.device))
            for m in modules for p in m.parameters()
        )

    def get(self, modules: tuple[torch.nn.Module, ...], extract: Callable[[], Any], key: Any = None) -> Any:
        """``extract()``'s value for ``modules`` (the first one keys the entry) and ``key``,
        from the cache while no parameter of ``modules`` has changed."""
        stamp = (key, self.stamp(modules))
        hit = self._entries.get(modules[0])
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = extract()
        self.extractions += 1
        self._entries[modules[0]] = (stamp, value)
        return value


class SamplerError(ValueError):
    """A sampler was asked for a (backbone, head) pair or a model it does not support."""


class NonFiniteSampleError(SamplerError):
    """A sampler's draw holds NaN or inf; the message names the head, the sampler and the tier,
    and the first such element."""


def check_finite_draw(sampler: "Sampler", model: "SpectrogramModel", request: SampleRequest, result: SampleResult) -> None:
    """Raise :class:`NonFiniteSampleError` when the sampled (not primed) values of ``result`` are
    not all finite, naming the head (its family and class), the sampler and the tier. Every
    :class:`Sampler` subclass's ``sample`` runs it on its own output (see
    :meth:`Sampler.__init_subclass__`), so a head whose draws are NaN is named where it happens,
    not later by the representation that receives the values.
    """
    primed = 0 if request.prime is None else int(request.prime.shape[1])
    drawn = result.x[:, primed:]
    bad = ~torch.isfinite(drawn)
    if not bool(bad.any()):
        return
    b, i, j = (int(v) for v in bad.nonzero()[0])
    head = model.head
    if request.tier is not None:
        where = f"tier {request.tier}"
    else:
        where = "an upsampling tier" if request.context is not None else "the initial tier"
    raise NonFiniteSampleError(
        f"head {head.family or '?'} ({type(head).__qualname__}) drew {float(drawn[b, i, j])} through sampler "
        f"{type(sampler).__name__} in {where}: {int(bad.sum())} of {drawn.numel()} sampled values are NaN or inf, "
        f"the first at batch item {b}, frame {primed + i}, bin {j} (temperature {request.temperature}); "
        "check the head's sample_from_noise (melforge.testing.check_samples_finite reproduces it)"
    )


def _checked(sample: Callable) -> Callable:
    """``sample`` followed by :func:`check_finite_draw` on its result."""
    @functools.wraps(sample)
    def checked_sample(self, model, request):
        result = sample(self, model, request)
        check_finite_draw(self, model, request, result)
        return result

    checked_sample.checks_finite = True
    return checked_sample


class Sampler(ABC):
    """Draws ``(batch, frames, bins)`` element by element in row-major order (seed 000 eq. 1).

    Class attributes a sampler declares:
        speed: a rank, higher is faster; the default sampler is the fastest that supports the
            model (reference 0, cached 10, compiled 20).
        backbones, heads: the backbone / head families (``Backbone.family``, ``Head.family``)
            it works with, or ``None`` for any.
        needs_incremental: it drives the backbone's incremental-state protocol.
        devices: device types it runs on (``None``: any).
    """

    speed: ClassVar[int] = 0
    backbones: ClassVar[tuple[str, ...] | None] = None

    def __init_subclass__(cls, **kwargs) -> None:
        """Every subclass's ``sample`` checks its own output (:func:`check_finite_draw`)."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("sample")
        if own is not None and not getattr(own, "checks_finite", False) and not getattr(own, "__isabstractmethod__", False):
            cls.sample = _checked(own)
    heads: ClassVar[tuple[str, ...] | None] = None
    needs_incremental: ClassVar[bool] = False
    devices: ClassVar[tuple[str, ...] | None] = None
    dtypes: ClassVar[tuple[torch.dtype, ...] | None] = None

    @classmethod
    def unsupported(cls, backbone: "Backbone", head: "Head") -> str | None:
        """Why this sampler cannot draw from ``backbone`` + ``head``, or ``None`` when it can."""
        if cls.backbones is not None and backbone.family not in cls.backbones:
            return f"backbone family {backbone.family!r} is not one of {', '.join(cls.backbones)}"
        if cls.heads is not None and head.family not in cls.heads:
            return f"head family {head.family!r} is not one of {', '.join(cls.heads)}"
        if cls.needs_incremental and not backbone.incremental:
            return f"backbone {backbone.family!r} does not implement the incremental-state protocol"
        param = next(backbone.parameters(), None)
        if param is not None:
            if cls.devices is not None and param.device.type not in cls.devices:
                return f"the model is on {param.device}, this sampler runs on {', '.join(cls.devices)}"
            if cls.dtypes is not None and param.dtype not in cls.dtypes:
                return f"the model is {param.dtype}, this sampler supports {', '.join(map(str, cls.dtypes))}"
        return None

    @classmethod
    def supports(cls, backbone: "Backbone", head: "Head") -> bool:
        """Whether :meth:`unsupported` finds nothing against the pair."""
        return cls.unsupported(backbone, head) is None

    @classmethod
    def support_summary(cls) -> str:
        """One line for ``melforge-plugins``: what the sampler declares it supports."""
        parts = [
            f"backbones: {', '.join(cls.backbones) if cls.backbones else 'any'}",
            f"heads: {', '.join(cls.heads) if cls.heads else 'any'}",
        ]
        if cls.needs_incremental:
            parts.append("incremental backbones")
        if cls.devices:
            parts.append(f"on {', '.join(cls.devices)}")
        if cls.dtypes:
            parts.append("/".join(str(d).replace("torch.", "") for d in cls.dtypes))
        parts.append(f"speed rank {cls.speed}")
        return "; ".join(parts)

    @abstractmethod
    def sample(self, model: "SpectrogramModel", request: SampleRequest) -> SampleResult:
        """Draw from ``model`` as ``request`` asks.

        Raises:
            ValueError: a bad request (see :meth:`SampleRequest.validate`).
            SamplerError: a model this sampler does not support.
        """

    def check(self, model: "SpectrogramModel") -> None:
        """Raise :class:`SamplerError` if this sampler cannot draw from ``model``."""
        why = self.unsupported(model.backbone, model.head)
        if why is not None:
            raise SamplerError(f"sampler {type(self).__name__}: {why}")


def select_sampler(
    registry: "Registry[Sampler]", name: str | None, backbone: "Backbone", head: "Head",
    options: dict[str, Any] | None = None,
) -> Sampler:
    """The sampler ``name`` (``None`` or ``"auto"``: the fastest registered sampler that
    supports ``backbone`` + ``head``, leaving out names two plugins registered), instantiated.

    The choice follows the device the backbone's parameters are on (each sampler's ``devices``):
    on a GPU the CPU-only compiled samplers drop out and ``auto`` takes the batched ``cached``
    one; :func:`melforge.core.experiment.place_experiment` chooses once the model is on its device.

    ``options`` (the config's ``sampler`` keys besides ``name``, e.g. a compiled sampler's
    ``weights`` and ``threads``) go to the named sampler's constructor; with ``auto`` they are
    ignored (the chosen sampler may not take them).

    Raises:
        UnknownEntryError: no sampler of that name (lists the known ones).
        SamplerError: the named sampler does not support the pair (says why), or none does.
    """
    if name not in (None, "auto"):
        entry = registry.get(str(name))
        why = entry.factory.unsupported(backbone, head)
        if why is not None:
            raise SamplerError(f"sampler {name!r} ({entry.plugin}) cannot sample this model: {why}")
        return registry.create(str(name), **(options or {}))
    candidates = [
        e for e in registry.entries() if e.name not in registry.collisions and e.factory.supports(backbone, head)
    ]
    if not candidates:
        raise SamplerError(
            f"no registered sampler supports backbone {backbone.family!r} with head {head.family!r}"
        )
    best = max(candidates, key=lambda e: (e.factory.speed, e.name))
    return registry.create(best.name)
