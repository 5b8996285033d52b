"""Gaussian mixture likelihood head (seed 000 §3, eq. 2–5)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from melforge.core.head import CompiledMaths, Head

from . import maths
from .maths import HALF_LOG_2PI, LOG_SIGMA_MAX, LOG_SIGMA_MIN, U_MAX, U_MIN


class GMMHead(Head):
    """K-component Gaussian mixture per element.

    The projection gives ``θ̂ = (μ̂, σ̂, π̂) ∈ R^{3K}`` (layout ``[μ_1..μ_K, σ̂_1..σ̂_K, π̂_1..π̂_K]``)
    and the constraints are eq. 3–5: ``μ = μ̂``, ``σ = exp(σ̂)`` (σ̂ clamped to
    ``[LOG_SIGMA_MIN, LOG_SIGMA_MAX]``), ``π = softmax(π̂)``.

    Args:
        in_features: width of the backbone features.
        components: number of mixture components K (Table 2 uses 10).

    Raises:
        ValueError: ``components < 1``.
    """

    family = "gmm"

    def __init__(self, in_features: int, components: int = 10):
        super().__init__()
        if components < 1:
            raise ValueError(f"gmm: components must be >= 1, got {components}")
        self.in_features = int(in_features)
        self.components = int(components)
        self.num_params = 3 * self.components
        self.noise_width = self.components + 1  # K Gumbel uniforms, then one normal
        self.proj = nn.Linear(self.in_features, self.num_params)  # W_θ

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h: (..., in_features)`` → ``θ̂: (..., 3K)``."""
        return self.proj(h)

    def projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W_θ (num_params, in_features), b (num_params,))`` of :meth:`forward` (live parameters)."""
        return self.proj.weight, self.proj.bias

    def compiled_maths(self, dtype: torch.dtype) -> CompiledMaths:
        """:func:`maths.draw_element` and :func:`maths.log_prob_element` as C-callable functions
        for ``dtype`` (float32 or float64; compiled or loaded from Numba's cache on first use),
        float64 scratch of 4K."""
        draw, log_prob = maths.c_maths(torch.empty(0, dtype=dtype).numpy().dtype)
        return CompiledMaths(draw=draw, log_prob=log_prob, scratch=4 * self.components)

    def constrain(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``θ̂: (..., 3K)`` → ``(μ, log σ, log π)``, each ``(..., K)`` (eq. 3–5, log domain)."""
        mu, log_sigma, logits = params.split(self.components, dim=-1)
        log_sigma = log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
        return mu, log_sigma, F.log_softmax(logits, dim=-1)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``log Σ_k π_k N(x; μ_k, σ_k)`` by log-sum-exp (eq. 2), nats, shape of ``x``."""
        mu, log_sigma, log_pi = self.constrain(params)
        z = (x.unsqueeze(-1) - mu) * torch.exp(-log_sigma)
        log_normal = -0.5 * z * z - log_sigma - HALF_LOG_2PI  # (..., K)
        return torch.logsumexp(log_pi + log_normal, dim=-1)

    def draw_noise(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """The random numbers that :meth:`sample_from_noise` turns into draws, for elements of
        shape ``shape`` (e.g. ``(batch, bins)`` for one frame).

        Drawn in this order from ``generator``: first ``u = torch.rand(shape + (K,))`` (uniforms
        for the Gumbel-max choice of a component), then ``eps = torch.randn(shape)`` (standard
        normals); returned as one tensor ``(*shape, K + 1)``, ``[u_1..u_K, eps]`` per element
        (the layout :mod:`melforge.plugins.gmm.maths` reads).
        """
        shape = tuple(shape)
        u = torch.rand(shape + (self.components,), generator=generator, dtype=dtype, device=device)
        eps = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        return torch.cat([u, eps.unsqueeze(-1)], dim=-1)

    def sample_from_noise(self, params: torch.Tensor, temperature: float, noise: torch.Tensor) -> torch.Tensor:
        """Draw one value per element from given noise (see :meth:`draw_noise`).

        Gumbel-max picks the component, ``k = argmax_k(log π_k + g_k)`` with
        ``g_k = -log(-log(clamp(u_k, U_MIN, U_MAX)))``, and the value is ``μ_k + σ_k·eps``
        (eq. 2–5). Biasing (seed 000 §6, Graves 2013 §5): with temperature τ the mixture weights
        become ``softmax(log π / τ)`` and the deviations ``σ·√τ``; ``τ = 1`` is the model's
        distribution. NaN and ±inf draws become 0. The compiled twin is
        :func:`melforge.plugins.gmm.maths.draw`.

        Args:
            params: ``(..., 3K)`` unconstrained parameters.
            temperature: τ > 0.
            noise: ``(..., K + 1)``: ``u`` in ``[0, 1)`` then ``eps``.

        Returns:
            ``(...)`` the drawn values, the dtype of ``params``.

        Raises:
            ValueError: ``temperature <= 0`` or noise of the wrong shape.
        """
        if not temperature > 0:
            raise ValueError(f"gmm: temperature must be > 0, got {temperature}")
        if noise.shape != params.shape[:-1] + (self.noise_width,):
            raise ValueError(
                f"gmm: noise shape {tuple(noise.shape)} does not fit parameters {tuple(params.shape)} "
                f"(expected {tuple(params.shape[:-1]) + (self.noise_width,)})"
            )
        u, eps = noise[..., : self.components], noise[..., self.components]
        mu, log_sigma, log_pi = self.constrain(params.detach())
        if temperature != 1.0:
            log_pi = F.log_softmax(log_pi / temperature, dim=-1)
            log_sigma = log_sigma + 0.5 * math.log(temperature)
        gumbel = -torch.log(-torch.log(u.to(log_pi.dtype).clamp(U_MIN, U_MAX)))
        k = torch.argmax(log_pi + gumbel, dim=-1, keepdim=True)
        x = mu.gather(-1, k) + torch.exp(log_sigma.gather(-1, k)) * eps.to(mu.dtype).unsqueeze(-1)
        return torch.nan_to_num(x.squeeze(-1), nan=0.0, posinf=0.0, neginf=0.0)
