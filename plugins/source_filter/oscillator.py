"""DDSP's harmonic oscillator bank (Engel et al. 2020, §3.1, eq. 1-3): frame-rate controls
upsampled to the sample rate, phase the cumulative sum of the instantaneous frequency, a sum of
sinusoids at integer multiples of F0 with per-harmonic amplitudes, harmonics at or above the
Nyquist frequency silenced."""

from __future__ import annotations

import math

import torch


def frames_to_samples(x: torch.Tensor, hop: int) -> torch.Tensor:
    """Linear interpolation of frame-rate controls to the sample rate.

    Frame ``t`` is centred on sample ``t · hop`` (a centred STFT), so sample ``n`` lies at frame
    position ``n / hop``; the last frame is held to the end.

    Args:
        x: ``(batch, frames)`` or ``(batch, frames, channels)``.
        hop: samples per frame.

    Returns:
        ``(batch, frames · hop)`` or ``(batch, frames · hop, channels)``, same dtype.
    """
    squeeze = x.dim() == 2
    if squeeze:
        x = x[..., None]
    frames = x.shape[1]
    pos = torch.arange(frames * hop, device=x.device, dtype=torch.float64) / hop
    lo = torch.clamp(pos.floor().long(), max=frames - 1)
    hi = torch.clamp(lo + 1, max=frames - 1)
    w = (pos - lo).clamp(max=1.0).to(x.dtype)[None, :, None]
    y = x[:, lo] * (1 - w) + x[:, hi] * w
    return y[..., 0] if squeeze else y


def phase_cycles(f0_samples: torch.Tensor, sr: int) -> torch.Tensor:
    """Phase in cycles, wrapped to ``[0, 1)``: ``frac(Σ_{m ≤ n} f0[m] / sr)`` (eq. 2, the
    integral as a cumulative sum), accumulated in float64 so long clips keep their phase.

    Args:
        f0_samples: ``(batch, samples)`` instantaneous frequency in Hz.

    Returns:
        ``(batch, samples)`` float64.
    """
    return torch.remainder(torch.cumsum(f0_samples.double() / sr, dim=1), 1.0)


def harmonic_oscillator(f0_samples: torch.Tensor, amplitudes: torch.Tensor, sr: int,
                        initial_phase: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_k A_k[n] sin(2π k φ[n])`` for harmonics ``k = 1 … K`` (eq. 1, 3).

    Args:
        f0_samples: ``(batch, samples)`` F0 in Hz.
        amplitudes: ``(batch, samples, K)`` per-harmonic amplitudes (linear); a harmonic whose
            frequency ``k · f0`` reaches ``sr / 2`` is silenced at that sample.
        sr: sample rate (Hz).
        initial_phase: ``(batch,)`` phase offset in cycles (default 0).

    Returns:
        ``(batch, samples)`` float32 audio (whatever the dtype of ``amplitudes``).
    """
    amplitudes = amplitudes.float()  # the phase needs float32 at least (bf16 would quantise it)
    k = torch.arange(1, amplitudes.shape[-1] + 1, device=amplitudes.device, dtype=torch.float64)
    cycles = phase_cycles(f0_samples, sr)
    if initial_phase is not None:
        cycles = cycles + initial_phase.double()[:, None]
    phase = torch.remainder(cycles[..., None] * k, 1.0).to(amplitudes.dtype)  # (batch, samples, K), cycles
    below = (f0_samples[..., None].double() * k < sr / 2).to(amplitudes.dtype)
    return torch.sum(amplitudes * below * torch.sin(2 * math.pi * phase), dim=-1)


def nyquist_mask(f0: torch.Tensor, harmonics: int, sr: int) -> torch.Tensor:
    """``(…, harmonics)`` 1 where ``k · f0 < sr / 2``, else 0 (``f0 (…)`` Hz)."""
    k = torch.arange(1, harmonics + 1, device=f0.device, dtype=f0.dtype)
    return (f0[..., None] * k < sr / 2).to(f0.dtype)


def exp_sigmoid(x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7) -> torch.Tensor:
    """DDSP's output nonlinearity for amplitudes: ``max_value · sigmoid(x)^ln(exponent) + threshold``
    (Engel et al. 2020, appendix B), positive, with a gentle slope at low levels."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold
