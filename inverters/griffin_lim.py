"""Fast Griffin-Lim: alternating projections with momentum (Perraudin, Balazs & Søndergaard 2013).

Griffin & Lim (1984) alternate the projection onto consistent spectrograms
``P_C(c) = STFT(ISTFT(c))`` and onto the target magnitude ``P_A(c) = S · c / |c|``. The fast
variant extrapolates between consistent iterates::

    t_n = P_C(c_{n-1});   c_n = P_A(t_n + α (t_n − t_{n−1}))

(α = 0 is the classic algorithm). ``P_A`` is scale-invariant, so ``t_n − α/(1+α) · t_{n−1}`` is
used, as in ``librosa.griffinlim``. The frame loops (overlap-add, re-framing, the momentum update
and projection) are Numba kernels; the FFTs are scipy's.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numba import njit

from melforge.core.inverter import Inverter
from melforge.core.stft import StftParams
from melforge.core.validation import check_magnitude

from . import stft_kernels as K

INITS = ("random", "zero", "pghi")


@njit(cache=True)
def momentum_projection(rebuilt, previous, target, beta, out):
    """Fast Griffin-Lim update: ``out = target · d / |d|`` with ``d = rebuilt − beta · previous``.

    All arrays are ``(frames, bins)``; ``rebuilt``/``previous``/``out`` complex, ``target`` real
    (the magnitude). A zero ``d`` gives a zero coefficient (as librosa).
    """
    n_frames, n_bins = target.shape
    for t in range(n_frames):
        for f in range(n_bins):
            re = rebuilt[t, f].real - beta * previous[t, f].real
            im = rebuilt[t, f].imag - beta * previous[t, f].imag
            a2 = re * re + im * im
            scale = target[t, f] / np.sqrt(a2) if a2 > 0 else 0.0
            out[t, f] = complex(re * scale, im * scale)
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


def initial_coefficients(
    magnitude: np.ndarray,
    init: str,
    rng: np.random.Generator,
    initial_phase: np.ndarray | None,
    stft: StftParams | None = None,
) -> np.ndarray:
    """Starting coefficients ``magnitude · exp(i φ0)``, ``(frames, bins)`` complex64.

    ``φ0`` is ``initial_phase`` (radians, ``(frames, bins)``) when given, else uniform random in
    ``[0, 2π)`` (``init="random"``), zero (``init="zero"``) or the phase-gradient heap
    integration estimate (``init="pghi"``, :func:`melforge.inverters.pghi.pghi_phase` with
    ``stft``).

    Raises:
        ValueError: ``initial_phase`` of another shape than ``magnitude`` or not finite.
    """
    if initial_phase is not None:
        phase = np.asarray(initial_phase, dtype=np.float64)
        if phase.shape != magnitude.shape:
            raise ValueError(
                f"initial_phase: expected shape {magnitude.shape} (frames, bins) like the magnitude, got {phase.shape}"
            )
        if not np.isfinite(phase).all():
            raise ValueError("initial_phase: holds NaN or inf values")
    elif init == "random":
        phase = 2 * np.pi * rng.random(magnitude.shape)
    elif init == "pghi":
        from .pghi import pghi_phase

        phase = pghi_phase(magnitude, stft, seed=int(rng.integers(2**31)))
    else:
        phase = np.zeros(magnitude.shape)
    return polar(magnitude, phase, np.empty(magnitude.shape, dtype=np.complex64))


def griffin_lim_coefficients(
    coefficients: np.ndarray,
    magnitude: np.ndarray,
    stft: StftParams,
    n_iter: int,
    momentum: float,
    length: int,
    update=None,
) -> np.ndarray:
    """Run ``n_iter`` fast Griffin-Lim iterations from ``coefficients``.

    Args:
        coefficients: ``(frames, bins)`` complex64 start (used once, never re-imposed).
        magnitude: ``(frames, bins)`` float32 target magnitude.
        stft: analysis geometry.
        n_iter: iterations.
        momentum: α ≥ 0 (0: classic Griffin-Lim).
        length: signal length in samples the spectrogram describes (``1 + length // hop == frames``).
        update: optional ``f(rebuilt (frames, bins) complex) -> (frames, bins) float32`` giving a
            new target magnitude every iteration after the first (e.g.
            :class:`melforge.inverters.mel_to_linear.MelMagnitudeUpdate`).

    Returns:
        ``(frames, bins)`` complex64 coefficients with magnitude ``magnitude`` (or the last
        updated one).
    """
    n_frames = magnitude.shape[0]
    window = K.hann_window(stft, np.float32)
    norm = K.istft_norm(stft, n_frames, length, np.float32)
    buf = np.empty(stft.n_fft + stft.hop_length * (n_frames - 1), dtype=np.float32)
    reframed = np.empty((n_frames, stft.n_fft), dtype=np.float32)
    beta = np.float32(momentum / (1.0 + momentum))
    c = np.ascontiguousarray(coefficients, dtype=np.complex64)
    previous = np.zeros_like(c)
    for it in range(n_iter):
        frames = scipy.fft.irfft(c, n=stft.n_fft, axis=1, workers=K.FFT_WORKERS)
        K.consistent_frames(frames, window, stft.hop_length, norm, buf, reframed)
        rebuilt = scipy.fft.rfft(reframed, axis=1, workers=K.FFT_WORKERS)
        if update is not None and it > 0:
            magnitude = update(rebuilt)
        momentum_projection(rebuilt, previous, magnitude, beta if it > 0 else np.float32(0.0), c)
        previous = rebuilt
    return c


class GriffinLim(Inverter):
    """Fast Griffin-Lim with momentum (Perraudin et al. 2013; α = 0: Griffin & Lim 1984).

    Args:
        n_iter: number of iterations (≥ 0).
        momentum: α ≥ 0; 0.99 is the fast-GL default, 0 the classic algorithm.
        init: starting phase when none is given to :meth:`invert`: ``"random"`` (uniform in
            ``[0, 2π)``, drawn from ``seed``), ``"zero"`` or ``"pghi"`` (phase-gradient heap
            integration, Průša et al. 2017).
        seed: seed of the random starting phase.

    Raises:
        ValueError: negative ``n_iter`` or ``momentum``, or an unknown ``init``.
    """

    def __init__(self, n_iter: int = 32, momentum: float = 0.99, init: str = "random", seed: int = 0):
        if int(n_iter) != n_iter or n_iter < 0:
            raise ValueError(f"griffin_lim: n_iter must be an integer >= 0, got {n_iter!r}")
        if not np.isfinite(momentum) or momentum < 0:
            raise ValueError(f"griffin_lim: momentum must be a finite number >= 0, got {momentum!r}")
        if init not in INITS:
            raise ValueError(f"griffin_lim: init must be one of {INITS}, got {init!r}")
        self.n_iter, self.momentum, self.init, self.seed = int(n_iter), float(momentum), init, int(seed)

    def invert_coefficients(
        self,
        magnitude: np.ndarray,
        stft: StftParams,
        *,
        length: int | None = None,
        initial_phase: np.ndarray | None = None,
    ) -> np.ndarray:
        """Like :meth:`invert` but returns the final ``(frames, bins)`` complex64 coefficients."""
        magnitude = check_magnitude(magnitude, stft)
        n_frames = magnitude.shape[0]
        work_length = K.signal_length(stft, n_frames, length)
        rng = np.random.default_rng(self.seed)
        c0 = initial_coefficients(magnitude, self.init, rng, initial_phase, stft)
        target = np.ascontiguousarray(magnitude, dtype=np.float32)
        return griffin_lim_coefficients(c0, target, stft, self.n_iter, self.momentum, work_length)

    def invert(
        self,
        magnitude: np.ndarray,
        stft: StftParams,
        *,
        length: int | None = None,
        initial_phase: np.ndarray | None = None,
    ) -> np.ndarray:
        """Invert ``magnitude (frames, n_fft//2+1)`` → ``(samples,)`` float32 at ``stft.sr`` Hz.

        Args:
            magnitude: non-negative linear STFT magnitude.
            stft: the analysis geometry.
            length: output length in samples (default ``(frames - 1) * hop_length``); must give
                ``frames`` frames (``1 + length // hop_length``).
            initial_phase: optional ``(frames, bins)`` phase in radians to start from (warm
                start); it is used once as the starting point, not re-applied per iteration.

        Raises:
            ValueError: a bad magnitude (see :func:`melforge.core.validation.check_magnitude`), a
                ``length`` that does not fit the frame count (see
                :func:`melforge.inverters.stft_kernels.signal_length`) or an ``initial_phase`` of
                the wrong shape or not finite.
        """
        c = self.invert_coefficients(magnitude, stft, length=length, initial_phase=initial_phase)
        return K.istft(c, stft, K.signal_length(stft, c.shape[0], length)).astype(np.float32)

    def invert_mel(
        self,
        mel_power: np.ndarray,
        mel_basis: np.ndarray,
        stft: StftParams,
        *,
        length: int | None = None,
        initial_phase: np.ndarray | None = None,
    ) -> np.ndarray:
        """Invert a mel power spectrogram: fast GL from the NNLS magnitude
        (:func:`melforge.inverters.mel_to_linear.mel_to_linear`) whose target magnitude is
        re-estimated every iteration from the consistent spectrogram so that its mel power
        matches ``mel_power`` (:class:`melforge.inverters.mel_to_linear.MelMagnitudeUpdate`).

        Args:
            mel_power: ``(frames, n_mels)`` non-negative mel power ``M = |STFT|² Bᵀ``.
            mel_basis: ``(n_mels, n_fft // 2 + 1)`` filterbank ``B``.
            stft: the analysis geometry.
            length: output length in samples (default ``(frames - 1) * hop_length``).
            initial_phase: optional ``(frames, bins)`` starting phase in radians (used once).

        Returns:
            ``(samples,)`` float32 waveform.

        Raises:
            ValueError: see :func:`melforge.inverters.mel_to_linear.check_mel`; a ``length``
                that does not fit the frame count; a bad ``initial_phase``.
        """
        from .mel_to_linear import MelMagnitudeUpdate, check_mel, mel_to_linear

        mel_power, mel_basis = check_mel(mel_power, mel_basis, stft)
        magnitude = mel_to_linear(mel_power, mel_basis)
        n = K.signal_length(stft, magnitude.shape[0], length)
        rng = np.random.default_rng(self.seed)
        c0 = initial_coefficients(magnitude, self.init, rng, initial_phase, stft)
        c = griffin_lim_coefficients(
            c0, magnitude.astype(np.float32), stft, self.n_iter, self.momentum, n, MelMagnitudeUpdate(mel_power, mel_basis)
        )
        return K.istft(c, stft, n).astype(np.float32)
