"""A-weighted loudness per frame: the silence detector of CREPE-based pitch metrics (torchcrepe's
``loudness.a_weighted``, and the variant that Vocos' ``metrics/periodicity.py`` computes inline).

Per STFT frame, the power spectrum in dB (``librosa.power_to_db``: reference 1, floor 1e-10,
at most 80 dB below the clip's loudest bin), plus the A-weighting curve of each bin
(``librosa.A_weighting``, floored at −80 dB), minus :data:`REF_DB`, averaged over the bins.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np

from .validation import check_audio

#: torchcrepe's reference level (``loudness.REF_DB``), subtracted from the weighted dB.
REF_DB = 20.0
#: ``power_to_db``'s floor (power) and dynamic range (dB below the clip's maximum).
AMIN = 1e-10
TOP_DB = 80.0


def a_weighted_loudness(
    audio: np.ndarray,
    hop: int,
    *,
    sr: int = 16000,
    n_fft: int = 1024,
    center: bool = False,
    floor_db: float | None = None,
) -> np.ndarray:
    """A-weighted loudness of each frame of a waveform (dB, relative to :data:`REF_DB`).

    Vocos' recipe is the default: unpadded frames (``center=False``), no per-bin floor.
    torchcrepe's ``threshold.Silence`` is ``center=True`` (zero padding) with ``floor_db=-100``
    (each weighted bin floored at −100 dB before the mean).

    Args:
        audio: ``(samples,)`` waveform at ``sr`` Hz.
        hop: frame step in samples.
        sr: sample rate in Hz (places the A-weighting on the bins).
        n_fft: frame and FFT length in samples (Hann window).
        center: ``True``: frames centred on ``n · hop`` (zero padding), ``1 + samples // hop``
            of them; ``False``: ``1 + (samples − n_fft) // hop`` frames starting at ``n · hop``.
        floor_db: per-bin floor of the weighted dB before averaging; ``None``: none.

    Returns:
        ``(frames,)`` float64 loudness in dB.

    Raises:
        ValueError: bad audio, a non-positive hop, or (``center=False``) fewer than ``n_fft`` samples.
    """
    audio = check_audio(audio, "a_weighted_loudness").astype(np.float64)
    if hop <= 0:
        raise ValueError(f"a_weighted_loudness: hop must be a positive number of samples, got {hop}")
    if not center and audio.size < n_fft:
        raise ValueError(f"a_weighted_loudness: unpadded frames need at least {n_fft} samples, got {audio.size}")
    spec = librosa.stft(audio, n_fft=n_fft, hop_length=hop, win_length=n_fft, window="hann", center=center,
                        pad_mode="constant")  # (bins, frames)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    with warnings.catch_warnings():  # log10(0) at 0 Hz: the curve's floor (−80 dB) applies there
        warnings.simplefilter("ignore", RuntimeWarning)
        weighted = librosa.perceptual_weighting(np.abs(spec) ** 2, freqs, kind="A", ref=1.0, amin=AMIN, top_db=TOP_DB)
    weighted = weighted - REF_DB  # (bins, frames) dB
    if floor_db is not None:
        weighted = np.maximum(weighted, floor_db)
    return weighted.mean(axis=0)
