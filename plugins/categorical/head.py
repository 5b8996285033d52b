"""Categorical likelihood head over a uniform grid of levels in [-1, 1] (WaveNet's softmax
output over 8-bit μ-law levels, van den Oord et al. 2016 §2.2; seed 000 Appendix A.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from melforge.core.head import CompiledMaths, Head

from . import maths
from .maths import U_MAX, U_MIN


class CategoricalHead(Head):
    """A softmax over ``classes`` levels per element.

    The values a model sees lie on a uniform grid of ``classes`` levels in [-1, 1], level ``k``
    ↦ ``2k / (classes − 1) − 1`` (e.g. the 256 μ-law levels of the ``mu_law`` representation);
    ``forward`` gives the logits ``l = W h + b`` and the probability of a value is that of its
    nearest level, ``softmax(l)[k(x)]`` — a mass, so the NLL is in nats per element (bits:
    divide by ln 2). The maths lives in :mod:`melforge.plugins.categorical.maths`, which the
    compiled WaveNet sampler calls.

    Args:
        in_features: width of the backbone features.
        classes: number of levels (256 for 8-bit μ-law, seed 000 Appendix A.2).

    Raises:
        ValueError: ``classes < 2``.
    """

    family = "categorical"

    def __init__(self, in_features: int, classes: int = 256):
        super().__init__()
        if int(classes) < 2:
            raise ValueError(f"categorical: classes must be >= 2, got {classes}")
        self.in_features = int(in_features)
        self.classes = int(classes)
        self.num_params = self.classes
        self.noise_width = self.classes  # one uniform per class (Gumbel-max)
        self.proj = nn.Linear(self.in_features, self.classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h: (..., in_features)`` → logits ``(..., classes)``."""
        return self.proj(h)

    def projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W_θ (num_params, in_features), b (num_params,))`` of :meth:`forward` (live parameters)."""
        return self.proj.weight, self.proj.bias

    def compiled_maths(self, dtype: torch.dtype) -> CompiledMaths:
        """:func:`maths.draw_element` and :func:`maths.log_prob_element` as C-callable functions
        for ``dtype`` (float32 or float64; compiled or loaded from Numba's cache on first use),
        float64 scratch of classes."""
        draw, log_prob = maths.c_maths(torch.empty(0, dtype=dtype).numpy().dtype)
        return CompiledMaths(draw=draw, log_prob=log_prob, scratch=self.classes)

    def level_of(self, x: torch.Tensor) -> torch.Tensor:
        """Values ``x: (...)`` → nearest levels ``floor((x + 1)(classes − 1) / 2 + 1/2)``
        clamped to ``[0, classes − 1]``, int64 ``(...)`` (:func:`maths.level_of`)."""
        k = torch.floor((x.detach().to(torch.float64) + 1.0) * (self.classes - 1) / 2.0 + 0.5)
        return torch.nan_to_num(k, nan=0.0).clamp(0, self.classes - 1).long()

    def value_of(self, level: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Levels ``(...)`` → values ``2k / (classes − 1) − 1`` in [-1, 1] computed in float64
        and rounded to ``dtype`` (:func:`maths.value_of`)."""
        return ((level.to(torch.float64) * 2.0) / (self.classes - 1) - 1.0).to(dtype)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``log softmax(l)[k(x)]`` in nats: ``params: (..., classes)`` logits, ``x: (...)``
        values (snapped to their nearest level) → ``(...)``."""
        k = self.level_of(x).unsqueeze(-1)  # (..., 1)
        return F.log_softmax(params, dim=-1).gather(-1, k).squeeze(-1)

    def draw_noise(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """``torch.rand(shape + (classes,))``: one uniform per class and element, e.g.
        ``(batch, bins, classes)`` for one frame. One call for ``(n, *shape)`` gives the same
        numbers as ``n`` calls for ``shape`` (PyTorch's CPU generator fills tensors in order),
        which the compiled WaveNet sampler relies on."""
        return torch.rand(tuple(shape) + (self.classes,), generator=generator, dtype=dtype, device=device)

    def sample_from_noise(self, params: torch.Tensor, temperature: float, noise: torch.Tensor) -> torch.Tensor:
        """Draw one value per element: Gumbel-max ``k = argmax_k(l_k / τ + g_k)`` with
        ``g_k = −log(−log(clamp(u_k, U_MIN, U_MAX)))`` — a draw from ``softmax(l / τ)``, i.e.
        from ``log_softmax(l / τ)`` whose normaliser does not change the argmax — and the value
        of level ``k``. Biasing (seed 000 §6): τ < 1 sharpens the distribution towards its
        modes, τ → 0 gives the most likely level; τ = 1 is the model's distribution. The
        compiled twin is :func:`melforge.plugins.categorical.maths.draw`.

        Args:
            params: ``(..., classes)`` logits.
            temperature: τ > 0.
            noise: ``(..., classes)`` uniforms in [0, 1) (:meth:`draw_noise`).

        Returns:
            ``(...)`` values on the grid, the dtype of ``params`` (never NaN or inf).

        Raises:
            ValueError: ``temperature <= 0`` or noise of the wrong shape.
        """
        if not temperature > 0:
            raise ValueError(f"categorical: temperature must be > 0, got {temperature}")
        if noise.shape != params.shape:
            raise ValueError(
                f"categorical: noise shape {tuple(noise.shape)} does not fit logits {tuple(params.shape)}"
            )
        logits = params.detach()
        if temperature != 1.0:
            logits = logits / temperature
        gumbel = -torch.log(-torch.log(noise.to(logits.dtype).clamp(U_MIN, U_MAX)))
        k = torch.argmax(logits + gumbel, dim=-1)  # (...), the first of equal scores
        return self.value_of(k, params.dtype)
