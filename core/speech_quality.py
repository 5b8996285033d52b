"""Speech quality of a vocoder's output against its reference: wide-band PESQ (ITU-T P.862.2, the
``pesq`` package) and STOI (Taal et al. 2011, the ``pystoi`` package), as Vocos (Table 1) and
most vocoder papers report them.

PESQ runs at 16 kHz (inputs at another rate are resampled with librosa; Vocos resamples with
torchaudio). STOI is computed by ``pystoi`` at its own 10 kHz, from the clip's native rate: a
16 kHz step before it would only add a second resampler. Where Vocos calls
``pesq(..., on_error=1)`` and gets −1 for a clip without speech, these raise :class:`ValueError`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pesq as pesq_lib
import pystoi

from .audio_pair import paired_audio

#: PESQ's wide-band rate (Hz).
PESQ_SR = 16000


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sr: int = PESQ_SR, clip: str = "clip") -> float:
    """Wide-band PESQ (P.862.2) MOS-LQO of an estimate against its reference.

    Both signals are scaled together by their common peak (the ``pesq`` package does this) and
    time-aligned by PESQ itself.

    Args:
        reference, estimate: ``(samples,)`` waveforms at ``sr`` Hz, of equal length (resampled to
            16 kHz when ``sr`` differs).
        sr: their sample rate in Hz.
        clip: the clip's name, for error messages.

    Returns:
        MOS-LQO, from about 1.04 (bad) to 4.64 (identical).

    Raises:
        ValueError: bad audio, different lengths, a silent reference, or a clip in which PESQ
            finds no utterance or that is too short (message names ``clip``).
    """
    reference, estimate = paired_audio(reference, estimate, sr, PESQ_SR, f"pesq_wb ({clip})")
    if not np.any(reference):
        raise ValueError(f"pesq_wb ({clip}): the reference is silent")
    try:
        return float(pesq_lib.pesq(PESQ_SR, reference, estimate, "wb"))
    except pesq_lib.NoUtterancesError as exc:
        raise ValueError(f"pesq_wb ({clip}): PESQ detected no utterance in the reference or the estimate "
                         f"({reference.size / PESQ_SR:.2f} s at 16 kHz): is it speech?") from exc
    except pesq_lib.PesqError as exc:  # e.g. BufferTooShortError: under 0.25 s
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"pesq_wb ({clip}): PESQ failed ({type(exc).__name__}: {detail}); "
                         f"{reference.size / PESQ_SR:.2f} s at 16 kHz") from exc


def stoi(reference: np.ndarray, estimate: np.ndarray, sr: int, extended: bool = False, clip: str = "clip") -> float:
    """Short-time objective intelligibility of an estimate against its reference (``pystoi``).

    Args:
        reference, estimate: ``(samples,)`` waveforms at ``sr`` Hz, of equal length.
        sr: their sample rate in Hz (``pystoi`` resamples to 10 kHz).
        extended: the extended STOI of Jensen & Taal (2016) instead.
        clip: the clip's name, for error messages.

    Returns:
        STOI, about 0 to 1 (1: identical).

    Raises:
        ValueError: bad audio, different lengths, or too little non-silent speech for STOI's
            30-frame (384 ms) segments (``pystoi`` would warn and return 1e-5).
    """
    reference, estimate = paired_audio(reference, estimate, sr, None, f"stoi ({clip})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = pystoi.stoi(reference.astype(np.float64), estimate.astype(np.float64), sr, extended=extended)
    short = [w for w in caught if "Not enough STFT frames" in str(w.message)]
    if short:
        raise ValueError(f"stoi ({clip}): {reference.size / sr:.2f} s of audio leave too few non-silent frames "
                         f"for STOI's 30-frame segments ({short[0].message})")
    for w in caught:  # pass the others on
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return float(value)
