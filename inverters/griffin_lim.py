"""Fast Griffin-Lim: alternating projections with momentum (Perraudin, Balazs & Søndergaard 2013).

Griffin & Lim (1984) alternate the projection onto consistent spectrograms
``P_C(c) = STFT(ISTFT(c))`` and onto the target magnitude ``P_A(c) = S · c / |c|``. The fast
variant extrapolates between consistent iterates::

    t_n = P_C(c_{n-1});   c_n = P_A(t_n + α (t_n − t_{n−1}))

(α = 0 is the classic algorithm). ``P_A`` is scale-invariant, so ``t_n − α/(1+α) · t_{n−1}`` is
used, as in ``librosa.griffinlim``. The frame loops (overlap-add, re-framing, the momentum update
and projection) are Numba kernels; the FFTs are scipy's.

The starting phase is random, zero, or another inverter's estimate: ``GriffinLim(initializer=
PGHI())`` starts from phase-gradient heap integration (Průša et al. 2017).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numba import njit

from melforge.core import progress
from melforge.core.inverter import Inverter, signal_length
from melforge.core.mel_inversion import check_mel, nnls_magnitude
from melforge.core.stft import StftParams
from melforge.core.validation import check_magnitude

from melforge.core.dsp import stft_kernels as K
from .mel_to_linear import MelMagnitudeUpdate

#: Starting phases without an initializer: uniform random in [0, 2π), or zero.
INITS = ("random", "zero")


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
    for it in progress.iterate(range(n_iter), "griffin-lim", unit="iter"):  # a bar in commands only
        frames = scipy.fft.irfft(c, n=stft.n_fft, axis=1, workers=K.FFT_WORKERS)
        K.consistent_frames(frames, window, stft.hop_length, norm, buf, reframed)
        rebuilt = scipy.fft.rfft(reframed, axis=1, workers=K.FFT_WORKERS)
        if update is not None and it > 0:
            magnitude = update(rebuilt)
        momentum_projection(rebuilt, previous, magnitude, beta if it > 0 else np.float32(0.0), c)
        previous = rebuilt
    return c


def check_phase(phase: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``phase`` as a float64 array of ``shape`` ``(frames, bins)`` (radians).

    Raises:
        ValueError: another shape, or NaN/inf values.
    """
    phase = np.asarray(phase, dtype=np.float64)
    if phase.shape != shape:
        raise ValueError(f"initial_phase: expected shape {shape} (frames, bins) like the magnitude, got {phase.shape}")
    if not np.isfinite(phase).all():
        raise ValueError("initial_phase: holds NaN or inf values")
    return phase


class GriffinLim(Inverter):
    """Fast Griffin-Lim with momentum (Perraudin et al. 2013; α = 0: Griffin & Lim 1984).

    From a linear magnitude ``S (frames, bins)`` it alternates the two projections from
    ``S · exp(i φ0)``. From a mel power (:meth:`invert_mel`) it starts from the NNLS magnitude
    (:func:`melforge.core.mel_inversion.nnls_magnitude`) and re-estimates the target magnitude
    every iteration after the first so that its mel power matches the target
    (:class:`melforge.inverters.mel_to_linear.MelMagnitudeUpdate`).

    Args:
        n_iter: number of iterations (≥ 0).
        momentum: α ≥ 0; 0.99 is the fast-GL default, 0 the classic algorithm.
        init: the starting phase ``φ0`` when there is no ``initializer``: ``"random"`` (uniform
            in ``[0, 2π)``, drawn from ``seed``) or ``"zero"``.
        seed: seed of the random starting phase.
        initializer: an inverter whose phase estimate (:meth:`Inverter._initial_phase`) is
            ``φ0``, e.g. :class:`melforge.inverters.pghi.PGHI`; for a mel target it receives the
            NNLS magnitude.

    Raises:
        ValueError: negative ``n_iter`` or ``momentum``, an unknown ``init``, or
            ``init="zero"`` together with an ``initializer``.
    """

    def __init__(
        self,
        n_iter: int = 32,
        momentum: float = 0.99,
        init: str = "random",
        seed: int = 0,
        *,
        initializer: Inverter | None = None,
    ):
        if int(n_iter) != n_iter or n_iter < 0:
            raise ValueError(f"griffin_lim: n_iter must be an integer >= 0, got {n_iter!r}")
        if not np.isfinite(momentum) or momentum < 0:
            raise ValueError(f"griffin_lim: momentum must be a finite number >= 0, got {momentum!r}")
        if init not in INITS:
            raise ValueError(f"griffin_lim: init must be one of {INITS}, got {init!r}")
        if initializer is not None and init != "random":
            raise ValueError(f"griffin_lim: init={init!r} and an initializer both set the starting phase; give one")
        self.n_iter, self.momentum, self.init, self.seed = int(n_iter), float(momentum), init, int(seed)
        self.initializer = initializer

    # --- public entry points: validate, then run ---------------------------------------------

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
                start, instead of ``init``/``initializer``); it is used once as the starting
                point, not re-applied per iteration.

        Raises:
            ValueError: a bad magnitude (see :func:`melforge.core.validation.check_magnitude`), a
                ``length`` that does not fit the frame count (see
                :func:`melforge.core.inverter.signal_length`) or an ``initial_phase`` of the
                wrong shape or not finite.
        """
        magnitude = check_magnitude(magnitude, stft)
        n = signal_length(stft, magnitude.shape[0], length)
        phase = None if initial_phase is None else check_phase(initial_phase, magnitude.shape)
        return self._audio(self._coefficients(magnitude, stft, n, phase), stft, n)

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
        n = signal_length(stft, magnitude.shape[0], length)
        phase = None if initial_phase is None else check_phase(initial_phase, magnitude.shape)
        return self._coefficients(magnitude, stft, n, phase)

    def invert_mel(
        self,
        mel_power: np.ndarray,
        mel_basis: np.ndarray,
        stft: StftParams,
        *,
        length: int | None = None,
        initial_phase: np.ndarray | None = None,
    ) -> np.ndarray:
        """Invert a mel power spectrogram: fast GL from the NNLS magnitude whose target magnitude
        is re-estimated every iteration so that its mel power matches ``mel_power``.

        Args:
            mel_power: ``(frames, n_mels)`` non-negative mel power ``M = |STFT|² Bᵀ``.
            mel_basis: ``(n_mels, n_fft // 2 + 1)`` filterbank ``B``.
            stft: the analysis geometry.
            length: output length in samples (default ``(frames - 1) * hop_length``).
            initial_phase: optional ``(frames, bins)`` starting phase in radians (used once,
                instead of ``init``/``initializer``).

        Returns:
            ``(samples,)`` float32 waveform.

        Raises:
            ValueError: see :func:`melforge.core.mel_inversion.check_mel`; a ``length`` that
                does not fit the frame count; a bad ``initial_phase``.
        """
        mel_power, mel_basis = check_mel(mel_power, mel_basis, stft)
        n = signal_length(stft, mel_power.shape[0], length)
        phase = None if initial_phase is None else check_phase(initial_phase, (mel_power.shape[0], stft.n_bins))
        return self._audio(self._mel_coefficients(mel_power, mel_basis, stft, n, phase), stft, n)

    # --- composition hooks (validated input) -------------------------------------------------

    def _invert(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """Fast GL from the start phase: ``(length,)`` float32."""
        return self._audio(self._coefficients(magnitude, stft, length), stft, length)

    def _invert_mel(self, mel_power: np.ndarray, mel_basis: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """Fast GL with the mel magnitude update from the NNLS magnitude: ``(length,)`` float32."""
        return self._audio(self._mel_coefficients(mel_power, mel_basis, stft, length), stft, length)

    def _initial_phase(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """The phase of the final coefficients, ``(frames, bins)`` float64 radians."""
        return np.angle(self._coefficients(magnitude, stft, length)).astype(np.float64)

    # --- the algorithm -----------------------------------------------------------------------

    def _start_phase(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """``φ0 (frames, bins)`` radians: the initializer's estimate, random or zero."""
        if self.initializer is not None:
            return self.initializer._initial_phase(magnitude, stft, length)
        if self.init == "random":
            return 2 * np.pi * np.random.default_rng(self.seed).random(magnitude.shape)
        return np.zeros(magnitude.shape)

    def _coefficients(self, magnitude, stft, length, phase=None, update=None) -> np.ndarray:
        """``n_iter`` fast-GL iterations from ``magnitude · exp(i φ0)`` (``φ0 = phase`` or the
        start phase): ``(frames, bins)`` complex64 coefficients. ``magnitude`` is validated
        ``(frames, bins)`` float64; ``update`` as in :func:`griffin_lim_coefficients`."""
        if phase is None:
            phase = self._start_phase(magnitude, stft, length)
        c0 = K.polar(magnitude, phase, np.empty(magnitude.shape, dtype=np.complex64))  # (frames, bins)
        target = np.ascontiguousarray(magnitude, dtype=np.float32)
        return griffin_lim_coefficients(c0, target, stft, self.n_iter, self.momentum, length, update)

    def _mel_coefficients(self, mel_power, mel_basis, stft, length, phase=None) -> np.ndarray:
        """:meth:`_coefficients` from the NNLS magnitude of validated ``mel_power (frames,
        n_mels)`` with the mel magnitude update."""
        magnitude = nnls_magnitude(mel_power, mel_basis)  # (frames, bins)
        return self._coefficients(magnitude, stft, length, phase, MelMagnitudeUpdate(mel_power, mel_basis))

    @staticmethod
    def _audio(coefficients: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """``(length,)`` float32 least-squares ISTFT of ``(frames, bins)`` coefficients."""
        return K.istft(coefficients, stft, length).astype(np.float32, copy=False)
