"""The training losses of the phase-gradient vocoder (seed 002 §3.1.1, eq. 7–11).

All inputs are ``(batch, frames, bins)`` tensors on the linear STFT grid. The magnitude terms act
on the log-magnitude ``M = log|X|`` (natural log, nats) — the standardised quantity the network
predicts (§3.1); the offset and λ terms are weighted by the target power ``|X|² = exp(2M)``,
divided by its mean over the batch so that the weights average 1 whatever the signal level
(the paper leaves the scale of ``M²`` open; the global average is its "omitted" mean).

    L1 = ⟨(M̂ − M)²⟩                                                    eq. 7
    L2 = ⟨(DCT_{:20}(M̂) − DCT_{:20}(M))²⟩    orthonormal DCT-II over bins   eq. 8
    L3 = ⟨w · (Δm̂ − Δm)²⟩ where λ > 0.5,  ⟨w · (Δn̂ − Δn)²⟩ where λ ≤ 0.5    eq. 9
    L4 = ⟨w · (λ̂ − λ)²⟩                                                eq. 10
    L  = L1 + α₂ L2 + L3 + L4,  α₂ = 0.1                                 eq. 11

``⟨·⟩`` is the mean over batch, frames and bins (coefficients for L2); ``w = |X|² / mean |X|²``.
Offsets are in bins (Δm) and frames (Δn), as eq. 6 defines them. λ is the target's eq. 12 of the
true offsets; λ̂ in L4 is the network's learned λ channel (the paper's λ̂ is eq. 12 of the
predicted offsets, so its L4 also trains Δm̂ and Δn̂; ours does not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Weight of the LFCC term (§3.1.1: "all weights are set to 1 except α₂ = 0.1").
ALPHA_LFCC = 0.1
#: Linear-frequency cepstral coefficients compared by L2 (§3.1.1: "the first 20").
N_LFCC = 20
#: λ above which a bin counts as sinusoidal in L3 (eq. 9).
LAMBDA_SPLIT = 0.5


def dct_matrix(n_coeffs: int, n_bins: int, dtype=torch.float32) -> torch.Tensor:
    """The first ``n_coeffs`` rows of the orthonormal DCT-II of length ``n_bins``:
    ``D[c, k] = s_c cos(π c (k + ½) / n_bins)``, ``s_0 = √(1/n_bins)``, ``s_c = √(2/n_bins)``
    (``scipy.fft.dct(x, norm="ortho")[:n_coeffs] == D @ x``).

    Returns:
        ``(n_coeffs, n_bins)`` tensor.

    Raises:
        ValueError: ``n_coeffs`` not in ``1..n_bins``.
    """
    if not 1 <= n_coeffs <= n_bins:
        raise ValueError(f"pg_vocoder: n_lfcc must be in 1..{n_bins} (the STFT bins), got {n_coeffs}")
    c = torch.arange(n_coeffs, dtype=torch.float64)[:, None]
    k = torch.arange(n_bins, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * c * (k + 0.5) / n_bins) * math.sqrt(2.0 / n_bins)
    d[0] /= math.sqrt(2.0)
    return d.to(dtype)


def power_weight(logmag: torch.Tensor) -> torch.Tensor:
    """``w = |X|² / mean(|X|²)`` from the target log-magnitude ``(batch, frames, bins)`` (nats);
    same shape, mean 1 (the weights of eq. 9–10)."""
    power = torch.exp(2.0 * logmag.double())
    return (power / power.mean().clamp_min(1e-30)).to(logmag.dtype)


def magnitude_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 7: mean squared error of the log-magnitudes ``(batch, frames, bins)``."""
    return torch.mean((pred - target) ** 2)


def lfcc_loss(pred: torch.Tensor, target: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """Eq. 8: mean squared error of the first LFCCs, ``DCT_{:n}`` over the bin axis.

    Args:
        pred, target: ``(batch, frames, bins)`` log-magnitudes.
        dct: ``(n_coeffs, bins)`` from :func:`dct_matrix`.
    """
    return torch.mean(((pred - target) @ dct.T) ** 2)  # DCT is linear: DCT(M̂) − DCT(M) = DCT(M̂ − M)


def offset_loss(
    pred_dm: torch.Tensor, pred_dn: torch.Tensor, dm: torch.Tensor, dn: torch.Tensor, lam: torch.Tensor,
    weight: torch.Tensor,
) -> torch.Tensor:
    """Eq. 9: the power-weighted squared error of the frequency offset Δm (bins) where the target
    λ > 0.5 (sinusoidal bins) and of the time offset Δn (frames) elsewhere (impulsive bins); all
    ``(batch, frames, bins)``."""
    sinusoidal = lam > LAMBDA_SPLIT
    err = torch.where(sinusoidal, (pred_dm - dm) ** 2, (pred_dn - dn) ** 2)
    return torch.mean(weight * err)


def lambda_loss(pred_lam: torch.Tensor, lam: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Eq. 10: the power-weighted squared error of the classification λ ∈ [0, 1] (``pred_lam``:
    the network's λ channel, not eq. 12 of its offsets as in the paper)."""
    return torch.mean(weight * (pred_lam - lam) ** 2)


@dataclass(frozen=True)
class LossWeights:
    """The α of eq. 11: 1 for every term but the LFCC one (α₂ = 0.1); ``n_lfcc`` coefficients."""

    lfcc: float = ALPHA_LFCC
    n_lfcc: int = N_LFCC


def vocoder_losses(pred: dict, target: dict, dct: torch.Tensor, weights: LossWeights = LossWeights()) -> dict:
    """Every term of eq. 7–10 and their weighted sum, eq. 11.

    Args:
        pred: ``{"logmag", "dm", "dn", "lam"}`` network outputs, ``(batch, frames, bins)`` each.
        target: the same keys, the analysed targets.
        dct: ``(n_lfcc, bins)`` (:func:`dct_matrix`).
        weights: α₂.

    Returns:
        ``{"loss", "magnitude", "lfcc", "offsets", "lambda"}`` scalar tensors (``loss`` carries
        the gradient of the others).
    """
    w = power_weight(target["logmag"])
    terms = {
        "magnitude": magnitude_loss(pred["logmag"], target["logmag"]),
        "lfcc": lfcc_loss(pred["logmag"], target["logmag"], dct),
        "offsets": offset_loss(pred["dm"], pred["dn"], target["dm"], target["dn"], target["lam"], w),
        "lambda": lambda_loss(pred["lam"], target["lam"], w),
    }
    terms["loss"] = terms["magnitude"] + weights.lfcc * terms["lfcc"] + terms["offsets"] + terms["lambda"]
    return terms
