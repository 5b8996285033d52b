"""From CREPE's salience to a pitch and a periodicity per frame: the cents of the 360 bins, the
allowed range, and two decoders: CREPE's weighted argmax (Kim et al. 2018, §2) and torchcrepe's
Viterbi path (its default, the one Vocos' metrics run).

Bin ``b`` is ``1997.38 + 20 b`` cents above 10 Hz (torchcrepe's ``convert.py``, i.e. CREPE's
``cents_mapping``): bin 0 is 31.70 Hz, bin 359 is 2005.5 Hz. torchcrepe adds a random
triangular dither of ±20 cents to every decoded pitch; melforge does not (pitches are
deterministic and quantised to the decoder's resolution).
"""

from __future__ import annotations

import librosa
import numpy as np
import torch

from .crepe import PITCH_BINS

#: Pitch of bin 0 in cents above :data:`CENTS_REFERENCE_HZ`, and the bin spacing in cents.
CENTS_OFFSET = 1997.3794084376191
CENTS_PER_BIN = 20.0
CENTS_REFERENCE_HZ = 10.0
#: Viterbi transition: a jump of ``k`` bins has weight ``max(12 − |k|, 0)`` (rows normalised),
#: so the path moves at most 11 bins (220 cents) per frame.
VITERBI_REACH = 12
#: Weighted argmax: the bins ``argmax − 4 … argmax + 4`` are averaged (CREPE's ``to_local_average_cents``).
LOCAL_BINS = 4
DECODERS = ("viterbi", "weighted_argmax")


def bins_to_cents(bins: np.ndarray) -> np.ndarray:
    """Cents above 10 Hz of (fractional) bin indices, ``1997.38 + 20 · bins``; any shape, float64."""
    return CENTS_OFFSET + CENTS_PER_BIN * np.asarray(bins, dtype=np.float64)


def cents_to_hz(cents: np.ndarray) -> np.ndarray:
    """Hz of cents above 10 Hz, ``10 · 2^(cents / 1200)``; any shape, float64."""
    return CENTS_REFERENCE_HZ * 2.0 ** (np.asarray(cents, dtype=np.float64) / 1200.0)


def hz_to_cents(hz: np.ndarray) -> np.ndarray:
    """Cents above 10 Hz of frequencies in Hz, ``1200 log2(hz / 10)``; any shape, float64."""
    return 1200.0 * np.log2(np.asarray(hz, dtype=np.float64) / CENTS_REFERENCE_HZ)


def allowed_bins(fmin: float, fmax: float) -> tuple[int, int]:
    """The bins ``lo … hi − 1`` that a decoder may choose for a pitch range (torchcrepe's
    ``postprocess``: ``lo`` is the bin at or below ``fmin``, ``hi`` the bin at or above ``fmax``).

    Raises:
        ValueError: ``fmin >= fmax``, a non-positive ``fmin``, or a range that holds no bin.
    """
    if not 0 < fmin < fmax:
        raise ValueError(f"allowed_bins: expected 0 < fmin < fmax, got fmin={fmin}, fmax={fmax}")
    lo = int(np.floor((hz_to_cents(fmin) - CENTS_OFFSET) / CENTS_PER_BIN))
    hi = int(np.ceil((hz_to_cents(fmax) - CENTS_OFFSET) / CENTS_PER_BIN))
    lo, hi = max(lo, 0), min(hi, PITCH_BINS)
    if hi <= lo:
        raise ValueError(f"allowed_bins: [{fmin}, {fmax}] Hz holds none of CREPE's bins (31.7-2005.5 Hz)")
    return lo, hi


def _checked(salience: np.ndarray | torch.Tensor) -> np.ndarray:
    salience = np.asarray(salience.cpu() if isinstance(salience, torch.Tensor) else salience, dtype=np.float64)
    if salience.ndim != 2 or salience.shape[1] != PITCH_BINS or salience.shape[0] == 0:
        raise ValueError(f"pitch decoding: expected (frames, {PITCH_BINS}) salience, got shape {salience.shape}")
    return salience


def weighted_argmax(salience: np.ndarray, lo: int = 0, hi: int = PITCH_BINS) -> tuple[np.ndarray, np.ndarray]:
    """CREPE's decoder: per frame, the salience-weighted mean of the cents of the nine bins around
    the most salient allowed bin.

    torchcrepe's ``weighted_argmax`` weights by ``sigmoid(salience)`` (a second sigmoid over the
    network's output); this follows the original CREPE, which weights by the salience itself.

    Args:
        salience: ``(frames, 360)`` network output.
        lo, hi: allowed bins (see :func:`allowed_bins`).

    Returns:
        ``bins (frames,)`` int, the most salient allowed bin, and ``cents (frames,)`` float64.

    Raises:
        ValueError: a salience that is not ``(frames, 360)`` with at least one frame.
    """
    salience = _checked(salience)
    bins = lo + np.argmax(salience[:, lo:hi], axis=1)  # (frames,)
    offsets = np.arange(-LOCAL_BINS, LOCAL_BINS + 1)  # (9,)
    window = bins[:, None] + offsets[None, :]  # (frames, 9)
    inside = (window >= lo) & (window < hi)  # bins outside the range weigh nothing (torchcrepe masks them)
    weights = np.where(inside, np.take_along_axis(salience, np.clip(window, 0, PITCH_BINS - 1), axis=1), 0.0)
    total = weights.sum(axis=1)
    local = (weights * bins_to_cents(window)).sum(axis=1) / np.where(total > 0, total, 1.0)
    return bins, np.where(total > 0, local, bins_to_cents(bins))


def viterbi(salience: np.ndarray, lo: int = 0, hi: int = PITCH_BINS) -> tuple[np.ndarray, np.ndarray]:
    """torchcrepe's default decoder: the most likely bin path under a triangular transition
    (:data:`VITERBI_REACH`), with per-frame observation probabilities ``softmax(salience)`` over
    the allowed bins (zero outside), by :func:`librosa.sequence.viterbi`.

    Args:
        salience: ``(frames, 360)`` network output.
        lo, hi: allowed bins (see :func:`allowed_bins`).

    Returns:
        ``bins (frames,)`` int and ``cents (frames,)`` float64 (the bins' cents, undithered).

    Raises:
        ValueError: a salience that is not ``(frames, 360)`` with at least one frame.
    """
    salience = _checked(salience)
    logits = np.full_like(salience, -np.inf)
    logits[:, lo:hi] = salience[:, lo:hi]
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)  # (frames, 360), softmax over the allowed bins
    k = np.arange(PITCH_BINS)
    transition = np.maximum(VITERBI_REACH - np.abs(k[:, None] - k[None, :]), 0).astype(np.float64)
    transition /= transition.sum(axis=1, keepdims=True)
    bins = librosa.sequence.viterbi(prob.T, transition).astype(np.int64)  # (frames,)
    return bins, bins_to_cents(bins)


def decode_pitch(
    salience: np.ndarray | torch.Tensor, fmin: float, fmax: float, decoder: str = "viterbi"
) -> tuple[np.ndarray, np.ndarray]:
    """Pitch and periodicity per frame from CREPE's salience (torchcrepe's ``postprocess``).

    The periodicity of a frame is the salience of the decoded bin: the largest allowed salience
    under ``weighted_argmax``, the salience on the path under ``viterbi``.

    Args:
        salience: ``(frames, 360)`` network output (:func:`melforge.core.crepe.crepe_salience`).
        fmin, fmax: pitch range in Hz.
        decoder: one of :data:`DECODERS`.

    Returns:
        ``pitch_hz (frames,)`` and ``periodicity (frames,)`` in [0, 1], float64.

    Raises:
        ValueError: an unknown decoder, a bad range or a salience of the wrong shape.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decode_pitch: decoder must be one of {DECODERS}, got {decoder!r}")
    salience = _checked(salience)
    lo, hi = allowed_bins(fmin, fmax)
    bins, cents = (viterbi if decoder == "viterbi" else weighted_argmax)(salience, lo, hi)
    periodicity = salience[np.arange(salience.shape[0]), bins]
    return cents_to_hz(cents), periodicity
