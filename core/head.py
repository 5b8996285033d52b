"""Base class of likelihood heads: per-element distribution parameters, NLL and sampling."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .declared import check_declared, missing_attribute


@dataclass(frozen=True)
class CompiledMaths:
    """A head's per-element maths as C-callable Numba functions (``numba.cfunc``), the one way a
    compiled sampler reaches it (:meth:`Head.compiled_maths`): the sampler passes the functions
    into its kernels and never imports the head's plugin. A ``cfunc`` argument is typed by its
    signature, so the kernels are compiled once for every head and cached on disk.

    Attributes:
        draw: ``draw(params*, n_params, noise*, n_noise, temperature, scratch*, n_scratch)``
            ``-> float64`` — one value (finite) from the unconstrained parameters
            ``(num_params,)`` and the element's noise ``(noise_width,)`` of
            :meth:`Head.draw_noise`, as :meth:`Head.sample_from_noise` draws it.
        log_prob: ``log_prob(params*, n_params, value, scratch*, n_scratch) -> float64`` — the
            untempered log-probability (nats) of ``value``, as :meth:`Head.log_prob`.
        scratch: length of the float64 scratch both take.

    ``params`` and ``noise`` point at the model's dtype, ``scratch`` at float64
    (:mod:`melforge.plugins.head_cfuncs` builds such functions from jitted maths).
    """

    draw: Callable
    log_prob: Callable
    scratch: int


class Head(nn.Module, ABC):
    """Maps backbone features to a univariate distribution per element.

    ``forward`` is the output projection (e.g. seed 000's ``θ̂_ij = W_θ h^f_ij[L]``); the other
    methods interpret its output. All tensors share leading axes ``(...)``, e.g.
    ``(batch, frames, bins)``.

    Sampling is split in two so that every sampler (eager or compiled) consumes the same random
    numbers in the same order: :meth:`draw_noise` draws the noise of a block of elements (a
    frame) from a generator, :meth:`sample_from_noise` turns parameters and that noise into
    values. :meth:`sample` is the two in a row.

    Attributes:
        family: the distribution's name (``"gmm"``, ``"categorical"``, …); samplers declare the
            families they support.
        in_features: width of the backbone features (the backbone's ``hidden_size``).
        num_params: unconstrained parameters per element.
        noise_width: random numbers drawn per element by :meth:`draw_noise`.
    """

    family: ClassVar[str] = ""
    in_features: int
    num_params: int
    noise_width: int

    #: Attributes every head instance sets in ``__init__``, with their meaning (errors name a
    #: missing one: :mod:`melforge.core.declared`).
    DECLARED: ClassVar[dict[str, str]] = {
        "in_features": "the width of the backbone features forward() receives (the runner passes it as in_features)",
        "num_params": "how many unconstrained parameters per element forward() returns",
        "noise_width": "how many random numbers per element draw_noise() draws",
    }

    def check_declared(self) -> None:
        """Raise :class:`~melforge.core.declared.MissingAttributeError` naming every attribute of
        :attr:`DECLARED` this head does not set (the registry calls it when it builds a head)."""
        check_declared(self, "Head", self.DECLARED)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            raise missing_attribute(self, "Head", name, self.DECLARED) from None

    @abstractmethod
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h: (..., in_features)`` → unconstrained parameters ``(..., num_params)``."""

    @abstractmethod
    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Log-probability (density or mass) in nats of ``x: (...)`` under
        ``params: (..., num_params)`` → ``(...)``."""

    @abstractmethod
    def draw_noise(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """The random numbers for elements of ``shape`` (e.g. ``(batch, bins)``, one frame),
        ``(*shape, noise_width)`` of ``dtype``, drawn from ``generator`` in a fixed order."""

    @abstractmethod
    def sample_from_noise(self, params: torch.Tensor, temperature: float, noise: torch.Tensor) -> torch.Tensor:
        """Values ``(...)`` from ``params: (..., num_params)`` and ``noise: (..., noise_width)``
        (from :meth:`draw_noise`); ``temperature < 1`` biases towards the modes (seed 000 §6,
        after Graves 2013). Never returns NaN or inf.

        Raises:
            ValueError: ``temperature <= 0`` or noise of the wrong shape.
        """

    def sample(
        self, params: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``(...)`` values from ``params: (..., num_params)``: :meth:`draw_noise` from
        ``generator``, then :meth:`sample_from_noise`.

        Raises:
            ValueError: ``temperature <= 0``.
        """
        if not temperature > 0:
            raise ValueError(f"{self.family or type(self).__name__}: temperature must be > 0, got {temperature}")
        noise = self.draw_noise(tuple(params.shape[:-1]), generator, params.dtype, params.device)
        return self.sample_from_noise(params, temperature, noise)

    def projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The output projection, for heads whose :meth:`forward` is one linear map
        ``θ̂ = W_θ h + b`` (seed 000 §3): ``(W_θ (num_params, in_features), b (num_params,))``,
        the live parameters (not copies). Compiled samplers read the head's weights only here.

        Raises:
            NotImplementedError: the head's forward is not one linear map (the default).
        """
        raise NotImplementedError(f"head {self.family or type(self).__name__!r} declares no linear projection")

    def compiled_maths(self, dtype: torch.dtype) -> CompiledMaths:
        """The head's per-element draw and log-probability as C-callable Numba functions for
        parameters of ``dtype`` (:class:`CompiledMaths`), for compiled samplers.

        Raises:
            NotImplementedError: the head has no compiled maths (the default).
        """
        raise NotImplementedError(f"head {self.family or type(self).__name__!r} declares no compiled maths")
