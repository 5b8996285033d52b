"""STFT / inverse STFT with librosa's conventions, the loops in Numba, the FFTs in scipy.

Conventions (identical to ``librosa.stft(center=True, pad_mode="constant", window="hann")`` and
``librosa.istft``): the periodic Hann window ``scipy.signal.get_window("hann", win_length,
fftbins=True)`` is zero-padded (centred) to ``n_fft``; the signal is zero-padded by ``n_fft // 2``
samples on both sides; frame ``t`` covers padded samples ``[t * hop, t * hop + n_fft)``. The
inverse is the windowed overlap-add divided by the sum of squared windows (where that sum exceeds
float32's ``tiny``), i.e. the least-squares inverse of Griffin & Lim (1984), eq. 6.

Shapes are time-major: spectrograms ``(frames, bins)`` with ``bins = n_fft // 2 + 1``, frame
buffers ``(frames, n_fft)``, signals ``(samples,)``.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import scipy.fft
import scipy.signal
from numba import njit

from melforge.core.stft import StftParams

#: Threads scipy.fft may use (all cores by default).
FFT_WORKERS = max(1, os.cpu_count() or 1)

#: Below this window-square sum a sample is left undivided (librosa: ``tiny(float32)``).
_TINY = float(np.finfo(np.float32).tiny)


def hann_window(stft: StftParams, dtype=np.float64) -> np.ndarray:
    """Periodic Hann window of ``win_length`` samples, centred and zero-padded to ``n_fft``.

    Returns:
        ``(n_fft,)`` read-only window (as librosa's ``get_window`` + ``pad_center``).
    """
    return _hann_window(stft, np.dtype(dtype).str)


@functools.lru_cache(maxsize=64)
def _hann_window(stft: StftParams, dtype: str) -> np.ndarray:
    win = scipy.signal.get_window("hann", stft.win_length, fftbins=True)
    left = (stft.n_fft - stft.win_length) // 2
    out = np.zeros(stft.n_fft, dtype=np.float64)
    out[left : left + stft.win_length] = win
    out = out.astype(dtype)
    out.flags.writeable = False
    return out


@njit(cache=True)
def frame_windowed(padded, window, hop, n_frames, out):
    """Cut ``padded (samples,)`` into windowed frames: ``out[t, n] = padded[t*hop + n] * window[n]``.

    ``out`` is ``(n_frames, n_fft)``; samples past the end of ``padded`` read as zero.
    """
    n_fft = window.shape[0]
    n = padded.shape[0]
    for t in range(n_frames):
        start = t * hop
        for k in range(n_fft):
            i = start + k
            out[t, k] = padded[i] * window[k] if i < n else 0.0
    return out


@njit(cache=True)
def overlap_add(frames, window, hop, out):
    """Windowed overlap-add: ``out[t*hop + n] += frames[t, n] * window[n]`` (``out`` zeroed first).

    ``frames`` is ``(n_frames, n_fft)``; ``out`` must hold ``n_fft + hop * (n_frames - 1)`` samples.
    """
    out[:] = 0.0
    n_frames, n_fft = frames.shape
    for t in range(n_frames):
        start = t * hop
        for k in range(n_fft):
            out[start + k] += frames[t, k] * window[k]
    return out


@njit(cache=True)
def consistent_frames(frames, window, hop, norm, buf, out):
    """One STFT-consistency projection in the frame domain, ``STFT(ISTFT(.))`` without the FFTs.

    Overlap-adds the time frames ``frames (n_frames, n_fft)`` (inverse FFTs of a spectrogram)
    with the window into ``buf (n_fft + hop*(n_frames-1),)``, multiplies sample-wise by ``norm``
    (the inverse window-square sum, zero outside the kept signal so that re-analysis sees the
    same zero padding as ``librosa.stft(center=True)``) and re-frames with the window into
    ``out (n_frames, n_fft)``.
    """
    n_frames, n_fft = frames.shape
    buf[:] = 0.0
    for t in range(n_frames):
        start = t * hop
        for k in range(n_fft):
            buf[start + k] += frames[t, k] * window[k]
    for i in range(buf.shape[0]):
        buf[i] *= norm[i]
    for t in range(n_frames):
        start = t * hop
        for k in range(n_fft):
            out[t, k] = buf[start + k] * window[k]
    return out


@njit(cache=True)
def polar(magnitude, phase, out):
    """``out = magnitude · exp(i · phase)``, all ``(frames, bins)``; ``out`` complex64.

    The phase is wrapped to ``[0, 2π)`` in float64 first, then sine and cosine are taken in
    float32 (enough for complex64 output, and about twice as fast).
    """
    n_frames, n_bins = magnitude.shape
    two_pi = 2.0 * np.pi
    for t in range(n_frames):
        for f in range(n_bins):
            ph = np.float32(phase[t, f] - two_pi * np.floor(phase[t, f] / two_pi))
            m = np.float32(magnitude[t, f])
            out[t, f] = complex(m * np.cos(ph), m * np.sin(ph))
    return out


def window_sumsquare(stft: StftParams, n_frames: int) -> np.ndarray:
    """Sum of squared shifted windows, ``(n_fft + hop * (n_frames - 1),)`` (librosa's
    ``window_sumsquare``)."""
    win = hann_window(stft)
    win2 = win * win
    n = stft.n_fft + stft.hop_length * (n_frames - 1)
    out = np.zeros(n)
    for t in range(n_frames):  # one vector add per frame
        out[t * stft.hop_length : t * stft.hop_length + stft.n_fft] += win2
    return out


def istft_norm(stft: StftParams, n_frames: int, length: int, dtype=np.float64) -> np.ndarray:
    """Per-sample ISTFT normalisation over the padded signal, ``(n_fft + hop*(n_frames-1),)``:
    ``1 / window_sumsquare`` where that exceeds float32 tiny (else 1), and 0 outside the kept
    samples ``[n_fft // 2, n_fft // 2 + length)``. Cached; the array is read-only."""
    return _istft_norm(stft, int(n_frames), int(length), np.dtype(dtype).str)


@functools.lru_cache(maxsize=64)
def _istft_norm(stft: StftParams, n_frames: int, length: int, dtype: str) -> np.ndarray:
    wss = window_sumsquare(stft, n_frames)
    norm = np.where(wss > _TINY, 1.0 / np.maximum(wss, _TINY), 1.0)
    start = stft.n_fft // 2
    norm[:start] = 0.0
    norm[start + length :] = 0.0
    norm = norm.astype(dtype)
    norm.flags.writeable = False
    return norm


def stft(audio: np.ndarray, stft: StftParams, dtype=np.float32) -> np.ndarray:
    """Complex STFT of ``audio (samples,)`` → ``(frames, bins)`` with ``frames = 1 + samples // hop``.

    Equals ``librosa.stft(audio, n_fft, hop_length, win_length, window="hann", center=True).T``.
    ``dtype`` (float32 or float64) sets the working precision (complex64 / complex128 output).
    """
    audio = np.asarray(audio, dtype=dtype)
    pad = stft.n_fft // 2
    padded = np.zeros(audio.shape[0] + 2 * pad, dtype=dtype)
    padded[pad : pad + audio.shape[0]] = audio
    n_frames = stft.frames_for(audio.shape[0])
    frames = np.empty((n_frames, stft.n_fft), dtype=dtype)
    frame_windowed(padded, hann_window(stft, dtype), stft.hop_length, n_frames, frames)
    return scipy.fft.rfft(frames, axis=1, workers=FFT_WORKERS)


def istft(spec: np.ndarray, stft: StftParams, length: int | None = None, dtype=np.float32) -> np.ndarray:
    """Least-squares inverse STFT of ``spec (frames, bins)`` → ``(length,)`` samples.

    Equals ``librosa.istft(spec.T, hop_length, win_length, n_fft, window="hann", center=True,
    length=length)``; ``length`` defaults to ``(frames - 1) * hop`` samples.
    """
    n_frames = spec.shape[0]
    if length is None:
        length = stft.samples_for(n_frames)
    frames = scipy.fft.irfft(spec, n=stft.n_fft, axis=1, workers=FFT_WORKERS).astype(dtype, copy=False)
    buf = np.empty(stft.n_fft + stft.hop_length * (n_frames - 1), dtype=dtype)
    overlap_add(frames, hann_window(stft, dtype), stft.hop_length, buf)
    buf *= istft_norm(stft, n_frames, length, dtype)
    start = stft.n_fft // 2
    out = np.zeros(length, dtype=dtype)
    avail = min(length, buf.shape[0] - start)
    out[:avail] = buf[start : start + avail]
    return out


def stft_adjoint(coefficients: np.ndarray, stft: StftParams, length: int, dtype=np.float64) -> np.ndarray:
    """Adjoint of :func:`stft` (as a real-linear map of the signal): ``Re(STFTᴴ G)``.

    For a real-valued loss ``L(X)`` of ``X = STFT(x)`` with ``dL = Re Σ conj(G) dX``
    (e.g. ``G = 2 (|X| − S) X / |X|`` for ``L = ‖|X| − S‖²``), this returns ``∂L/∂x``.
    Decorsière et al. (2015) compute the gradient of the magnitude loss this way.

    Args:
        coefficients: ``(frames, bins)`` complex ``G`` over the ``n_fft // 2 + 1`` stored bins.
        stft: analysis geometry.
        length: signal length in samples (``frames == 1 + length // hop``).

    Returns:
        ``(length,)`` real gradient.
    """
    n_fft = stft.n_fft
    h = np.array(coefficients, dtype=np.complex128 if dtype == np.float64 else np.complex64)
    # Re Σ_f G_f e^{+2πi f n / N} over the stored half spectrum = N · irfft(H) with the
    # bins that irfft mirrors (all but DC and, for even N, Nyquist) halved.
    last = h.shape[1] if n_fft % 2 == 0 else h.shape[1] + 1
    h[:, 1 : last - 1] *= 0.5
    frames = scipy.fft.irfft(h, n=n_fft, axis=1, workers=FFT_WORKERS).astype(dtype, copy=False)
    frames *= n_fft
    n_frames = h.shape[0]
    buf = np.empty(n_fft + stft.hop_length * (n_frames - 1), dtype=dtype)
    overlap_add(frames, hann_window(stft, dtype), stft.hop_length, buf)
    start = n_fft // 2
    out = np.zeros(length, dtype=dtype)
    avail = min(length, buf.shape[0] - start)
    out[:avail] = buf[start : start + avail]
    return out
