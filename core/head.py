"""Base class of likelihood heads: per-element distribution parameters, NLL and sampling."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class Head(nn.Module, ABC):
    """Maps backbone features to a univariate distribution per element.

    ``forward`` is the output projection (e.g. seed 000's ``θ̂_ij = W_θ h^f_ij[L]``); the other
    methods interpret its output. All tensors share leading axes ``(...)``, e.g.
    ``(batch, frames, bins)``.

    Attributes:
        in_features: width of the backbone features (the backbone's ``hidden_size``).
        num_params: unconstrained parameters per element.
    """

    in_features: int
    num_params: int

    @abstractmethod
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h: (..., in_features)`` → unconstrained parameters ``(..., num_params)``."""

    @abstractmethod
    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Log-density in nats of ``x: (...)`` under ``params: (..., num_params)`` → ``(...)``."""

    @abstractmethod
    def sample(
        self, params: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``(...)`` values from ``params: (..., num_params)``; ``temperature < 1`` biases
        towards the modes (seed 000 §6, after Graves 2013). Never returns NaN or inf."""
