"""A reference and an estimate for a metric: checked mono waveforms of equal length, brought to
the metric's sample rate (``librosa.resample``, its default soxr "high quality" resampler)."""

from __future__ import annotations

import librosa
import numpy as np

from .validation import check_audio


def at_rate(audio: np.ndarray, sr: int, target_sr: int, what: str = "audio") -> np.ndarray:
    """``audio`` checked and resampled from ``sr`` to ``target_sr`` Hz.

    Args:
        audio: ``(samples,)`` waveform at ``sr`` Hz.

    Returns:
        ``(samples · target_sr / sr,)`` float32 (the input itself, checked, when the rates agree).

    Raises:
        ValueError: not 1-D, empty, non-finite, or a non-positive rate (message names ``what``).
    """
    audio = check_audio(audio, what)
    if sr <= 0 or target_sr <= 0:
        raise ValueError(f"{what}: sample rates must be positive, got sr={sr}, target_sr={target_sr}")
    if sr == target_sr:
        return audio
    return librosa.resample(audio, orig_sr=sr, target_sr=target_sr).astype(np.float32)


def paired_audio(
    reference: np.ndarray, estimate: np.ndarray, sr: int | None, target_sr: int | None = None, what: str = "metric"
) -> tuple[np.ndarray, np.ndarray]:
    """A reference and an estimate of equal length, at ``target_sr`` Hz.

    Args:
        reference, estimate: ``(samples,)`` waveforms at ``sr`` Hz, of the same length (a vocoder
            whose output is a few samples longer or shorter is trimmed by the caller, who knows
            which end to trim).
        sr: their sample rate in Hz (``None``: unknown, only allowed without ``target_sr``).
        target_sr: the metric's rate; ``None``: no resampling.
        what: the metric's name, for error messages.

    Returns:
        ``(reference, estimate)``, float32 ``(samples,)`` each.

    Raises:
        ValueError: bad audio (see :func:`at_rate`), different lengths, or ``target_sr`` without ``sr``.
    """
    if np.shape(reference) != np.shape(estimate):
        raise ValueError(f"{what}: reference and estimate differ in shape ({np.shape(reference)} vs "
                         f"{np.shape(estimate)}); trim both to the same length first")
    if target_sr is None or target_sr == sr:
        return check_audio(reference, f"{what}: reference"), check_audio(estimate, f"{what}: estimate")
    if sr is None:
        raise ValueError(f"{what}: resampling to {target_sr} Hz needs the signals' sample rate")
    return at_rate(reference, sr, target_sr, f"{what}: reference"), at_rate(estimate, sr, target_sr, f"{what}: estimate")
