"""Cached autoregressive sampling for MelNet: O(frames·bins), one network pass in total.

The time-delayed stack runs once per frame (its time-RNN state carried from frame to frame,
its frequency RNNs over the whole previous frame); the frequency-delayed stack advances one
LSTM cell step per element. The public MelNet implementations re-run the whole network on the
growing prefix for every element instead (O(frames²·bins)).

Random numbers: a head with ``draw_noise`` / ``sample_from_noise`` (the GMM head) gets its noise
drawn once per sampled frame, before the frame's element loop — ``u: (batch, bins, K)`` uniforms,
then ``eps: (batch, bins)`` normals, from ``generator`` — so that the compiled sampler
(:mod:`melforge.plugins.melnet.compiled_sampler`), which draws the same noise in the same order,
gives the same spectrogram for the same seed.
"""

from __future__ import annotations

import torch

from melforge.core.backbone import SampleResult, check_sample_inputs
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
    context: torch.Tensor | None = None,
) -> SampleResult:
    """Draw ``(batch, frames, bins)`` from a :class:`~melforge.plugins.melnet.backbone.MelNet`.

    Args:
        model: the MelNet backbone (one tier).
        head: likelihood head (its ``log_prob`` at temperature 1 is accumulated).
        batch, frames, bins: output shape.
        temperature: biasing (seed 000 §6); the accumulated log-probability is always under
            the untempered model.
        generator: torch RNG; per sampled frame, ``u: (batch, bins, K)`` then
            ``eps: (batch, bins)`` are drawn from it (see the module docstring).
        cond: ``(batch, C)`` or ``(batch, frames, bins, C)`` conditioning, or ``None``.
        prime: ``(batch, P, bins)`` frames copied into the output and fed through the
            time-delayed stack before sampling continues at frame ``P`` (priming, seed 000 §6).
        context: ``x_<g: (batch, frames, bins)`` for an upsampling tier (§5.2), or ``None``.

    Raises:
        ValueError: bad shapes of ``prime``, ``cond`` or ``context``, or ``temperature <= 0``.
    """
    if not temperature > 0:
        raise ValueError(f"melnet: temperature must be > 0, got {temperature}")
    param = next(model.parameters())
    dtype, device = param.dtype, param.device
    primed = check_sample_inputs(batch=batch, frames=frames, bins=bins, prime=prime, context=context)
    x = torch.zeros(batch, frames, bins, dtype=dtype, device=device)
    if primed:
        x[:, :primed] = prime.to(dtype)
    z = model.conditioning(cond, None if context is None else context.to(dtype))
    log_prob = torch.zeros(batch, dtype=dtype, device=device)
    states = model.start_frames()
    prev_frame = torch.zeros(batch, bins, dtype=dtype, device=device)  # x_{i-1}, zeros before frame 0
    from_noise = hasattr(head, "draw_noise") and hasattr(head, "sample_from_noise")

    for i in range(frames):
        rows = model.time_frame(prev_frame, frame_of(z[0], i) if z is not None else None, states)
        if i < primed:
            prev_frame = x[:, i]
            continue
        if from_noise:  # this frame's noise, in the order the compiled sampler draws it
            u, eps = head.draw_noise((batch, bins), generator, dtype, device)  # (B, F, K), (B, F)
        # Frequency-delayed stack, one LSTM cell step per element (eq. 7 and 9).
        cell_states = [layer.initial_state(batch) for layer in model.frequency_layers]
        prev_value = torch.zeros(batch, 1, dtype=dtype, device=device)  # x_{i,j-1}
        zf = frame_of(z[1], i) if z is not None else None  # (B, F or 1, H)
        for j in range(bins):
            h_f = model.freq_input(prev_value)  # (B, H)
            if zf is not None:
                h_f = h_f + (zf[:, 0] if zf.shape[1] == 1 else zf[:, j])
            for l, layer in enumerate(model.frequency_layers):
                h_f, cell_states[l] = layer.step(h_f, rows[l][:, j], cell_states[l])
            params = head(h_f)  # (B, num_params)
            if from_noise:
                value = head.sample_from_noise(params, temperature, u[:, j], eps[:, j])  # (B,)
            else:
                value = head.sample(params, temperature, generator)  # (B,)
            log_prob += head.log_prob(params, value)
            x[:, i, j] = value
            prev_value = value.unsqueeze(-1)
        prev_frame = x[:, i]
    return SampleResult(x=x, log_prob=log_prob, sampled_elements=(frames - primed) * bins)


def frame_of(z: torch.Tensor, i: int) -> torch.Tensor:
    """Frame ``i`` of a projected conditioning term ``(batch, frames or 1, bins or 1, H)`` as
    ``(batch, bins or 1, H)``."""
    return z[:, 0] if z.shape[1] == 1 else z[:, i]
