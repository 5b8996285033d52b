"""Gradient-based inversion (Decorsière, Søndergaard, MacDonald & Dau 2015; the inverter seed 000 used).

Minimise over the waveform ``x``::

    magnitude target:  L(x) = ‖ |STFT(x)| − S ‖²_F
    mel target:        L(x) = ‖ sqrt(|STFT(x)|² Bᵀ + ε) − sqrt(M) ‖²_F

with scipy's L-BFGS and the analytic gradient ``∂L/∂x = Re(STFTᴴ G)`` (the adjoint STFT,
:func:`melforge.inverters.stft_kernels.stft_adjoint`), where ``G = 2 (|X| − S) X / |X|`` for the
magnitude loss (Decorsière et al. 2015, eq. 9) and the chain rule through the filterbank ``B``
for the mel loss.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from melforge.core.inverter import Inverter
from melforge.core.stft import StftParams
from melforge.core.validation import check_audio, check_magnitude

from . import stft_kernels as K
from .mel_to_linear import check_mel, mel_to_linear

INITS = ("griffin_lim", "pghi", "random", "zero")
_EPS = 1e-12


def magnitude_loss(x: np.ndarray, target: np.ndarray, stft: StftParams) -> tuple[float, np.ndarray]:
    """``L = ‖|STFT(x)| − S‖²`` and ``∂L/∂x``.

    Args:
        x: ``(samples,)`` float64 waveform.
        target: ``(frames, bins)`` magnitude ``S`` with ``frames = 1 + samples // hop``.

    Returns:
        ``(loss, gradient (samples,))``.
    """
    spec = K.stft(x, stft, dtype=np.float64)  # (frames, bins)
    mag = np.abs(spec)
    resid = mag - target
    g = 2.0 * resid * spec / np.maximum(mag, _EPS)
    return float(np.sum(resid**2)), K.stft_adjoint(g, stft, x.shape[0])


def mel_loss(
    x: np.ndarray, target_mel_power: np.ndarray, mel_basis: np.ndarray, stft: StftParams, eps: float
) -> tuple[float, np.ndarray]:
    """``L = ‖sqrt(|STFT(x)|² Bᵀ + ε) − sqrt(M)‖²`` and ``∂L/∂x``.

    Args:
        x: ``(samples,)`` float64 waveform.
        target_mel_power: ``(frames, n_mels)`` mel power ``M``.
        mel_basis: ``(n_mels, bins)`` filterbank ``B``.
        eps: power floor ``ε``.

    Returns:
        ``(loss, gradient (samples,))``.
    """
    spec = K.stft(x, stft, dtype=np.float64)  # (frames, bins)
    power = spec.real**2 + spec.imag**2
    mel = np.sqrt(power @ mel_basis.T + eps)  # (frames, n_mels)
    resid = mel - np.sqrt(target_mel_power)
    d_power = (resid / mel) @ mel_basis  # ∂L/∂P: (frames, bins)
    g = 2.0 * d_power * spec  # dL = Re Σ conj(G) dX with dP = 2 Re(conj(X) dX)
    return float(np.sum(resid**2)), K.stft_adjoint(g, stft, x.shape[0])


def lbfgs(fun, x0: np.ndarray, n_iter: int, memory: int) -> np.ndarray:
    """Run scipy's L-BFGS-B for at most ``n_iter`` iterations from ``x0 (samples,)``; returns
    the best point found (float64)."""
    if n_iter == 0:
        return np.asarray(x0, dtype=np.float64)
    res = scipy.optimize.minimize(
        fun,
        np.asarray(x0, dtype=np.float64),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": n_iter, "maxfun": 2 * n_iter + 10, "maxcor": memory, "ftol": 1e-16, "gtol": 1e-16},
    )
    return res.x


class GradientInversion(Inverter):
    """L-BFGS on the waveform with the analytic adjoint-STFT gradient (Decorsière et al. 2015).

    Args:
        n_iter: L-BFGS iterations (≥ 0).
        init: starting waveform when none is given: ``"griffin_lim"`` (``init_iters`` fast-GL
            iterations), ``"pghi"`` (phase-gradient heap integration), ``"random"`` or
            ``"zero"`` (the magnitude with random / zero phase).
        init_iters: fast Griffin-Lim iterations for ``init="griffin_lim"``.
        seed: seed of random phases.
        memory: L-BFGS history size (``maxcor``).

    Raises:
        ValueError: negative ``n_iter``/``init_iters``, ``memory < 1`` or an unknown ``init``.
    """

    def __init__(self, n_iter: int = 100, init: str = "pghi", init_iters: int = 16, seed: int = 0, memory: int = 10):
        for key, value, low in (("n_iter", n_iter, 0), ("init_iters", init_iters, 0), ("memory", memory, 1)):
            if int(value) != value or value < low:
                raise ValueError(f"gradient: {key} must be an integer >= {low}, got {value!r}")
        if init not in INITS:
            raise ValueError(f"gradient: init must be one of {INITS}, got {init!r}")
        self.n_iter, self.init, self.init_iters = int(n_iter), init, int(init_iters)
        self.seed, self.memory = int(seed), int(memory)

    def _start(self, magnitude: np.ndarray, stft: StftParams, length: int) -> np.ndarray:
        """Initial ``(length,)`` waveform from ``magnitude (frames, bins)`` by ``self.init``."""
        if self.init == "pghi":
            from .pghi import PGHI

            return PGHI(seed=self.seed).invert(magnitude, stft, length=length).astype(np.float64)
        from .griffin_lim import GriffinLim

        gl_init = "zero" if self.init == "zero" else "random"
        n = self.init_iters if self.init == "griffin_lim" else 0
        return GriffinLim(n_iter=n, init=gl_init, seed=self.seed).invert(magnitude, stft, length=length).astype(np.float64)

    def _length(self, n_frames: int, stft: StftParams, length: int | None) -> int:
        """Working length: ``length`` when it gives ``n_frames`` frames, else the default."""
        if length is not None and stft.frames_for(int(length)) == n_frames:
            return int(length)
        return stft.samples_for(n_frames)

    @staticmethod
    def _fit(x: np.ndarray, length: int | None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if length is None or length == x.shape[0]:
            return x
        out = np.zeros(int(length), dtype=np.float32)
        out[: min(length, x.shape[0])] = x[:length]
        return out

    def invert(
        self,
        magnitude: np.ndarray,
        stft: StftParams,
        *,
        length: int | None = None,
        initial_audio: np.ndarray | None = None,
        initial_phase: np.ndarray | None = None,
    ) -> np.ndarray:
        """Invert ``magnitude (frames, n_fft//2+1)`` → ``(samples,)`` float32 at ``stft.sr`` Hz.

        Args:
            magnitude: non-negative linear STFT magnitude ``S``.
            stft: the analysis geometry.
            length: output length in samples (default ``(frames - 1) * hop_length``).
            initial_audio: optional ``(samples,)`` starting waveform (overrides ``init``).
            initial_phase: optional ``(frames, bins)`` starting phase in radians (overrides
                ``init``; the start is ``ISTFT(S · exp(i φ))``).

        Raises:
            ValueError: a bad magnitude (see :func:`melforge.core.validation.check_magnitude`),
                or a starting point of the wrong shape or not finite.
        """
        magnitude = check_magnitude(magnitude, stft)
        n = self._length(magnitude.shape[0], stft, length)
        x0 = self._initial(magnitude, stft, n, initial_audio, initial_phase)
        x = lbfgs(lambda v: magnitude_loss(v, magnitude, stft), x0, self.n_iter, self.memory)
        return self._fit(x, length if length is not None else n)

    def _initial(self, magnitude, stft, n, initial_audio, initial_phase) -> np.ndarray:
        if initial_audio is not None:
            x0 = check_audio(initial_audio, "initial_audio").astype(np.float64)
            if stft.frames_for(x0.shape[0]) != magnitude.shape[0]:
                raise ValueError(
                    f"initial_audio: {x0.shape[0]} samples give {stft.frames_for(x0.shape[0])} frames, "
                    f"expected {magnitude.shape[0]} like the magnitude"
                )
            return x0
        if initial_phase is not None:
            from .griffin_lim import GriffinLim

            return GriffinLim(n_iter=0).invert(magnitude, stft, length=n, initial_phase=initial_phase).astype(np.float64)
        return self._start(magnitude, stft, n)

    def invert_mel(
        self,
        mel_power: np.ndarray,
        mel_basis: np.ndarray,
        stft: StftParams,
        *,
        length: int | None = None,
        initial_audio: np.ndarray | None = None,
    ) -> np.ndarray:
        """Invert a mel power spectrogram directly, optimising the mel loss through the filterbank.

        The start is ``init`` applied to :func:`melforge.inverters.mel_to_linear.mel_to_linear`
        of the target (or ``initial_audio``).

        Args:
            mel_power: ``(frames, n_mels)`` non-negative mel power ``M = |STFT|² Bᵀ``.
            mel_basis: ``(n_mels, n_fft // 2 + 1)`` filterbank ``B``.
            stft: the analysis geometry.
            length: output length in samples (default ``(frames - 1) * hop_length``).
            initial_audio: optional ``(samples,)`` starting waveform.

        Returns:
            ``(samples,)`` float32 waveform.

        Raises:
            ValueError: see :func:`melforge.inverters.mel_to_linear.check_mel`.
        """
        mel_power, mel_basis = check_mel(mel_power, mel_basis, stft)
        n = self._length(mel_power.shape[0], stft, length)
        magnitude = mel_to_linear(mel_power, mel_basis)
        x0 = self._initial(magnitude, stft, n, initial_audio, None)
        eps = 1e-10 * max(float(mel_power.max()), 1e-20)
        x = lbfgs(lambda v: mel_loss(v, mel_power, mel_basis, stft, eps), x0, self.n_iter, self.memory)
        return self._fit(x, length if length is not None else n)
