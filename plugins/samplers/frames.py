"""The frame loop every element-by-element sampler shares: priming, per-frame noise, the
untempered log-probability of the draws."""

from __future__ import annotations

from collections.abc import Callable

import torch

from melforge.core.model import SpectrogramModel
from melforge.core.sampler import SampleRequest, SampleResult

#: ``features_of(i, j, prev_value) -> (batch, hidden)``: the backbone features of element (i, j).
FeaturesOf = Callable[[int, int, torch.Tensor], torch.Tensor]


def sample_frames(
    model: SpectrogramModel,
    request: SampleRequest,
    start_frame: Callable[[int, torch.Tensor, torch.Tensor], FeaturesOf | None],
) -> SampleResult:
    """Draw ``request`` from ``model`` in row-major order (seed 000 eq. 1).

    For every frame ``i``, ``start_frame(i, x, prev_frame)`` is called with the spectrogram
    ``x: (batch, frames, bins)`` as drawn so far and ``x_{i-1}: (batch, bins)``; for a sampled
    frame it returns the function giving each element's features. The frame's noise is drawn
    with ``head.draw_noise((batch, bins))`` before its elements (primed frames draw none), so
    every sampler built on this loop consumes the generator identically.

    Raises:
        ValueError: see :meth:`SampleRequest.validate`.
    """
    primed = request.validate()
    head = model.head
    param = next(model.parameters())
    dtype, device = param.dtype, param.device
    batch, frames, bins = request.batch, request.frames, request.bins
    x = torch.zeros(batch, frames, bins, dtype=dtype, device=device)
    if primed:
        x[:, :primed] = request.prime.to(dtype=dtype, device=device)
    log_prob = torch.zeros(batch, dtype=dtype, device=device)
    prev_frame = torch.zeros(batch, bins, dtype=dtype, device=device)  # x_{i-1}, zeros before frame 0
    for i in range(frames):
        features_of = start_frame(i, x, prev_frame)
        if i >= primed:
            noise = head.draw_noise((batch, bins), request.generator, dtype, device)  # (B, F, W)
            prev_value = torch.zeros(batch, dtype=dtype, device=device)  # x_{i,j-1}
            for j in range(bins):
                params = head(features_of(i, j, prev_value))  # (B, num_params)
                value = head.sample_from_noise(params, request.temperature, noise[:, j])  # (B,)
                log_prob += head.log_prob(params, value)
                x[:, i, j] = value
                prev_value = x[:, i, j]
            if request.progress is not None:
                request.progress(1)
        prev_frame = x[:, i]
    return SampleResult(x=x, log_prob=log_prob, sampled_elements=(frames - primed) * bins)
