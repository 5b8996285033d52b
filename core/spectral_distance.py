"""Spectral distances between a vocoder's output and its reference: Parallel WaveGAN's
multi-resolution STFT distance (Yamamoto et al. 2020, §2.3, eq. 3-6; the loss the GAN vocoders
train with), the mel L1 of HiFi-GAN (Kong et al. 2020, eq. 3) and the log-spectral distance of
:func:`melforge.core.metrics.log_spectral_distance` on waveforms.
"""

from __future__ import annotations

import auraloss
import librosa
import numpy as np
import torch

from .audio_pair import paired_audio
from .metrics import log_spectral_distance
from .stft import StftParams, stft_magnitude

#: Multi-resolution STFT of Parallel WaveGAN (Table 1): FFT sizes, hops and window lengths (samples).
MRSTFT_FFT = (1024, 2048, 512)
MRSTFT_HOP = (120, 240, 50)
MRSTFT_WIN = (600, 1200, 240)
#: Mel-magnitude floor before the natural log (HiFi-GAN's ``dynamic_range_compression`` clip).
MEL_FLOOR = 1e-5


def multi_resolution_stft_loss(
    fft_sizes=MRSTFT_FFT, hop_sizes=MRSTFT_HOP, win_lengths=MRSTFT_WIN
) -> auraloss.freq.MultiResolutionSTFTLoss:
    """Parallel WaveGAN's multi-resolution STFT loss, ``auraloss.freq.MultiResolutionSTFTLoss``
    (Steinmetz & Reiss 2020): per resolution, spectral convergence ``‖|Y| − |X|‖_F / ‖|Y|‖_F``
    plus the mean ``|log |Y| − log |X||`` (magnitudes floored at √1e-8), averaged over the
    resolutions; Hann windows, centred frames with reflect padding.

    The module is called as ``loss(estimate (batch, 1, samples), target (batch, 1, samples))``;
    the spectral convergence is relative to the target, so the loss is not symmetric.
    """
    return auraloss.freq.MultiResolutionSTFTLoss(list(fft_sizes), list(hop_sizes), list(win_lengths))


def multi_resolution_stft_distance(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Parallel WaveGAN's multi-resolution STFT loss of an estimate against its reference
    (:func:`multi_resolution_stft_loss`, resolutions :data:`MRSTFT_FFT` / :data:`MRSTFT_HOP` /
    :data:`MRSTFT_WIN`, given in samples whatever the rate: Parallel WaveGAN's are at 24 kHz).

    Args:
        reference, estimate: ``(samples,)`` waveforms of equal length, longer than 1024 samples
            (the reflect padding of the 2048-sample FFT).

    Returns:
        The loss (dimensionless, 0 for identical signals); not symmetric: the spectral
        convergence divides by the reference.

    Raises:
        ValueError: bad audio, different lengths, or too short.
    """
    reference, estimate = paired_audio(reference, estimate, None, None, "multi_resolution_stft_distance")
    if reference.size <= max(MRSTFT_FFT) // 2:
        raise ValueError(f"multi_resolution_stft_distance: needs more than {max(MRSTFT_FFT) // 2} samples, "
                         f"got {reference.size}")
    loss = multi_resolution_stft_loss()
    with torch.no_grad():
        value = loss(torch.from_numpy(estimate)[None, None], torch.from_numpy(reference)[None, None])
    return float(value)


def log_mel_magnitude(audio: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int, fmin: float,
                      fmax: float | None, floor: float = MEL_FLOOR) -> np.ndarray:
    """``log(max(mel_basis @ |STFT(audio)|, floor))``, natural log of the mel *magnitude* (HiFi-GAN's
    feature; librosa's Slaney-normalised mel filters, Hann window of ``n_fft``, centred frames).

    Args:
        audio: ``(samples,)`` waveform at ``sr`` Hz.

    Returns:
        ``(frames, n_mels)`` float64 nats, ``frames = 1 + samples // hop``.

    Raises:
        ValueError: bad audio (not 1-D, empty or not finite) or bad STFT sizes.
    """
    magnitude = stft_magnitude(audio, StftParams(int(sr), int(n_fft), int(hop), int(n_fft)))  # (frames, bins)
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)  # (n_mels, bins)
    return np.log(np.maximum(magnitude @ basis.T.astype(np.float64), floor))


def mel_l1(reference: np.ndarray, estimate: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int,
           fmin: float, fmax: float | None, floor: float = MEL_FLOOR) -> float:
    """HiFi-GAN's mel L1 (eq. 3) between waveforms: the mean absolute difference of their
    :func:`log_mel_magnitude` (nats; symmetric; 0 for identical signals).

    HiFi-GAN's own analysis reflect-pads by ``(n_fft − hop) / 2`` without centring; this one
    centres its frames (librosa), which changes only the frame positions.

    Args:
        reference, estimate: ``(samples,)`` waveforms at ``sr`` Hz, of equal length.
        sr: sample rate in Hz; n_fft, hop: STFT size and step in samples; n_mels: mel bands;
            fmin, fmax: band edges in Hz (``fmax=None``: ``sr / 2``); floor: mel-magnitude floor.

    Raises:
        ValueError: bad audio, different lengths, or a non-positive floor.
    """
    if floor <= 0:
        raise ValueError(f"mel_l1: floor must be > 0, got {floor}")
    reference, estimate = paired_audio(reference, estimate, sr, None, "mel_l1")
    args = (sr, n_fft, hop, n_mels, fmin, fmax, floor)
    return float(np.mean(np.abs(log_mel_magnitude(reference, *args) - log_mel_magnitude(estimate, *args))))


def log_spectral_distance_audio(reference: np.ndarray, estimate: np.ndarray, stft: StftParams) -> float:
    """:func:`melforge.core.metrics.log_spectral_distance` (dB; symmetric) between the STFT
    magnitudes of two waveforms of equal length at ``stft.sr`` Hz.

    Raises:
        ValueError: bad audio or different lengths.
    """
    reference, estimate = paired_audio(reference, estimate, stft.sr, None, "log_spectral_distance_audio")
    return log_spectral_distance(stft_magnitude(reference, stft), stft_magnitude(estimate, stft))
