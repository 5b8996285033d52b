"""Cached autoregressive sampling for MelNet: O(frames·bins), one network pass in total.

The time-delayed stack runs once per frame (its time-RNN state carried from frame to frame,
its frequency RNNs over the whole previous frame); the frequency-delayed stack advances one
LSTM cell step per element. The public MelNet implementations re-run the whole network on the
growing prefix for every element instead (O(frames²·bins)).
"""

from __future__ import annotations

import torch

from melforge.core.backbone import SampleResult
from melforge.core.head import Head


@torch.no_grad()
def sample_cached(
    model,
    head: Head,
    *,
    batch: int,
    frames: int,
    bins: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    cond: torch.Tensor | None = None,
    prime: torch.Tensor | None = None,
) -> SampleResult:
    """Draw ``(batch, frames, bins)`` from a :class:`~melforge.plugins.melnet.backbone.MelNet`.

    Args:
        model: the MelNet backbone.
        head: likelihood head (its ``log_prob`` at temperature 1 is accumulated).
        batch, frames, bins: output shape.
        temperature: biasing (seed 000 §6); the accumulated log-probability is always under
            the untempered model.
        generator: torch RNG.
        cond: ``(batch, C)`` or ``(batch, frames, bins, C)`` conditioning, or ``None``.
        prime: ``(batch, P, bins)`` frames copied into the output and fed through the
            time-delayed stack before sampling continues at frame ``P`` (priming, seed 000 §6).

    Raises:
        ValueError: bad shapes of ``prime`` or ``cond``.
    """
    param = next(model.parameters())
    dtype, device = param.dtype, param.device
    primed = 0
    if prime is not None:
        if prime.dim() != 3 or prime.shape[0] != batch or prime.shape[2] != bins or prime.shape[1] > frames:
            raise ValueError(
                f"prime: expected shape ({batch}, <= {frames}, {bins}), got {tuple(prime.shape)}"
            )
        primed = prime.shape[1]
    x = torch.zeros(batch, frames, bins, dtype=dtype, device=device)
    if primed:
        x[:, :primed] = prime.to(dtype)
    z = model._cond(cond, x)
    log_prob = torch.zeros(batch, dtype=dtype, device=device)
    time_states: list = [None] * model.layers
    prev_frame = torch.zeros(batch, bins, dtype=dtype, device=device)  # x_{i-1}, zeros before frame 0

    def cond_at(zi: torch.Tensor, i: int) -> torch.Tensor:
        """Frame ``i`` of a projected conditioning tensor as ``(batch, bins, H)`` or broadcastable."""
        return zi[:, 0] if zi.shape[1] == 1 else zi[:, i]

    for i in range(frames):
        # Time-delayed stack, one frame (input x_{i-1}, eq. 6 and 8).
        h = model.time_input(prev_frame.unsqueeze(-1))  # (B, F, H)
        if z is not None:
            h = h + cond_at(z[0], i)
        row_t = []
        for l, layer in enumerate(model.time_layers):
            h, time_states[l] = layer.step(h, time_states[l])
            row_t.append(h)  # (B, F, H)
        if i < primed:
            prev_frame = x[:, i]
            continue
        # Frequency-delayed stack, one LSTM cell step per element (eq. 7 and 9).
        states = [layer.initial_state(batch) for layer in model.frequency_layers]
        prev_value = torch.zeros(batch, 1, dtype=dtype, device=device)  # x_{i,j-1}
        zf = cond_at(z[1], i) if z is not None else None
        for j in range(bins):
            h_f = model.freq_input(prev_value)  # (B, H)
            if zf is not None:
                h_f = h_f + (zf[:, 0] if zf.shape[1] == 1 else zf[:, j])
            for l, layer in enumerate(model.frequency_layers):
                h_f, states[l] = layer.step(h_f, row_t[l][:, j], states[l])
            params = head(h_f)  # (B, num_params)
            value = head.sample(params, temperature, generator)  # (B,)
            log_prob += head.log_prob(params, value)
            x[:, i, j] = value
            prev_value = value.unsqueeze(-1)
        prev_frame = x[:, i]
    return SampleResult(x=x, log_prob=log_prob, sampled_elements=(frames - primed) * bins)
