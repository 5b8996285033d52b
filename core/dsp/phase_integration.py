"""Phase from a magnitude and a phase gradient given as bin offsets (seed 002 §3.2, as we read it).

Two integrators share PGHI's bucket-queue heap
(:func:`melforge.core.dsp.heap.heap_integrate_directed`): coefficients are visited from the
largest magnitude down, each new coefficient taking its phase from the largest neighbour
already reached.

* ``method="pg"``: our interpretation of seed 002 §3.2. The paper gives the rule only: the phase
  propagates along time (eq. 3, ``φ[m, n+1] = φ[m, n] + R φ'_i[m, n]``) where ``λ > λ^S``, along
  frequency (eq. 4, ``φ[m+1, n] = φ[m, n] + φ'_m[m, n]``) where ``λ < λ^I``, and is "set to a
  random value otherwise", with λ computed by eq. 12 from the phase gradient. What it leaves
  open, and what we chose:

  - *the order of the bins*: not given; we borrow PGHI's heap (largest magnitude first, each bin
    continuing from its largest reached neighbour);
  - *whose class decides a step*: not given; a time step is taken between two time neighbours
    of which *either* is sinusoidal (``λ > λ^S``), a frequency step between two frequency
    neighbours of which either is impulsive (``λ < λ^I``), which keeps regions connected
    through the transients that start notes (the measured alternatives are in
    ``benchmarks/RESULTS.md``);
  - *the step*: ``step="trapezoid"`` (default, not the paper's) uses the mean of the two bins'
    gradients; ``step="euler"`` the gradient at the lower index, as eq. 3 and 4 are written;
  - *"a random value"*: a bin that no such pair reaches (a noise bin, ``λ^I ≤ λ ≤ λ^S``, among
    noise bins, or the first bin of a region) takes a random phase, from which the region
    grows;
  - *which λ*: whatever the caller passes. The targets' λ is eq. 12 of the true offsets
    (:func:`melforge.core.dsp.phase_targets.classification`); the phase-gradient vocoder passes
    its network's learned λ channel, not eq. 12 of its predicted offsets as the paper does.
* ``method="pghi"``: PGHI's integration (Průša et al. 2017, Algorithm 1) fed the given gradient:
  every bin takes its phase from any reached neighbour with trapezoidal steps, regions restart
  at phase 0, λ is not used.

The gradient follows from eq. 6: ``φ'_i = 2π (m + Δm) / N`` rad per sample and
``φ'_m = −2π R Δn / N`` rad per bin, with ``φ = arg X`` referred to the frame centre (eq. 1). The
returned phase is in librosa's convention (frame start: ``− 2π m ⌊N/2⌋ / N``), so
``magnitude · exp(i φ)`` feeds ``librosa.istft`` / :func:`melforge.core.dsp.stft_kernels.istft`.
Bins more than ``1/tol`` below the loudest get a random phase in both methods (as PGHI's
``tol``); they cost nothing and do not matter to the signal.
"""

from __future__ import annotations

import numpy as np

from melforge.core.stft import StftParams

from .heap import QUANTUM, heap_integrate_directed

#: §3.2: "we empirically set λ^I = 0.4 and λ^S = 0.5".
LAMBDA_SINUSOIDAL = 0.5
LAMBDA_IMPULSIVE = 0.4
#: Relative magnitude below which phases are random (as :class:`melforge.inverters.pghi.PGHI`).
TOL = 1e-5
METHODS = ("pg", "pghi")
STEPS = ("trapezoid", "euler")


def phase_increments(dm: np.ndarray, dn: np.ndarray, stft: StftParams) -> tuple[np.ndarray, np.ndarray]:
    """Phase steps from bin offsets (eq. 6 solved for the gradient).

    Args:
        dm: ``(frames, bins)`` frequency offsets Δm, bins.
        dn: ``(frames, bins)`` time offsets Δn, frames.

    Returns:
        ``(time_step, freq_step)``, ``(frames, bins)`` radians: ``R φ'_i = 2π R (m + Δm) / N``
        (the frame-to-frame advance of eq. 3) and ``φ'_m = −2π R Δn / N`` (the bin-to-bin step of
        eq. 4), in the frame-centred phase convention.
    """
    m = np.arange(dm.shape[1], dtype=np.float64)[None, :]
    scale = 2 * np.pi * stft.hop_length / stft.n_fft
    return scale * (m + dm), -scale * dn


def _checked_inputs(
    magnitude: np.ndarray, dm: np.ndarray, dn: np.ndarray, lam: np.ndarray | None, stft: StftParams,
    method: str, lam_time: float, lam_freq: float, tol: float, step: str,
) -> dict[str, np.ndarray]:
    """:func:`integrate_phase`'s arguments checked: ``{"magnitude", "dm", "dn"[, "lam"]}`` as
    contiguous float64 ``(frames, bins)`` arrays.

    Raises:
        ValueError: see :func:`integrate_phase`.
    """
    if method not in METHODS:
        raise ValueError(f"integrate_phase: method must be one of {METHODS}, got {method!r}")
    if step not in STEPS:
        raise ValueError(f"integrate_phase: step must be one of {STEPS}, got {step!r}")
    if not 0.0 <= lam_freq <= lam_time <= 1.0:
        raise ValueError(f"integrate_phase: need 0 <= lam_freq <= lam_time <= 1, got {lam_freq}, {lam_time}")
    if not 0 < tol < 1:
        raise ValueError(f"integrate_phase: tol must be in (0, 1), got {tol!r}")
    arrays = {"magnitude": magnitude, "dm": dm, "dn": dn}
    if method == "pg":
        if lam is None:
            raise ValueError("integrate_phase: method='pg' needs lam (the classification λ of §3.2)")
        arrays["lam"] = lam
    arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}
    shape = arrays["magnitude"].shape
    for key, value in arrays.items():
        if value.ndim != 2 or value.shape != shape or value.shape[1] != stft.n_bins:
            raise ValueError(
                f"integrate_phase: {key} must be (frames, {stft.n_bins}) like magnitude {shape}, got {value.shape}"
            )
        if not np.isfinite(value).all():
            raise ValueError(f"integrate_phase: {key} holds non-finite values")
    return arrays


def integrate_phase(
    magnitude: np.ndarray,
    dm: np.ndarray,
    dn: np.ndarray,
    lam: np.ndarray | None,
    stft: StftParams,
    *,
    method: str = "pg",
    lam_time: float = LAMBDA_SINUSOIDAL,
    lam_freq: float = LAMBDA_IMPULSIVE,
    seed: int = 0,
    tol: float = TOL,
    step: str = "trapezoid",
) -> np.ndarray:
    """Integrate the phase of ``magnitude`` from its bin offsets (module docstring).

    Args:
        magnitude: ``(frames, bins)`` non-negative linear STFT magnitude (the priority).
        dm: ``(frames, bins)`` frequency offsets Δm in bins (eq. 6).
        dn: ``(frames, bins)`` time offsets Δn in frames (eq. 6).
        lam: ``(frames, bins)`` classification λ ∈ [0, 1] (eq. 12 of true offsets, or a
            vocoder's learned λ channel); required for ``method="pg"``, ignored (may be None)
            for ``"pghi"``.
        stft: the analysis geometry (``bins == stft.n_bins``).
        method: ``"pg"`` (our interpretation of seed 002 §3.2) or ``"pghi"`` (PGHI's heap
            fed this gradient).
        lam_time: λ^S; bins with ``λ > lam_time`` propagate along time (eq. 3).
        lam_freq: λ^I; bins with ``λ < lam_freq`` propagate along frequency (eq. 4).
        seed: seed of the random phases.
        tol: relative magnitude (to the maximum) below which phases are random.
        step: ``"trapezoid"`` (mean gradient of the two bins) or ``"euler"`` (eq. 3 and 4 as
            written: the gradient at the lower index); ``"pghi"`` always uses the trapezoid.

    Returns:
        ``(frames, bins)`` float64 phase in radians, librosa's (frame-start) convention.

    Raises:
        ValueError: an unknown method or step, arrays whose shapes differ or do not have ``stft.n_bins``
            bins, non-finite or negative inputs, a missing ``lam`` for ``"pg"``, or thresholds
            with ``lam_freq > lam_time`` or outside [0, 1].
    """
    arrays = _checked_inputs(magnitude, dm, dn, lam, stft, method, lam_time, lam_freq, tol, step)
    shape = arrays["magnitude"].shape
    magnitude = arrays["magnitude"]
    if (magnitude < 0).any():
        raise ValueError("integrate_phase: magnitude must be non-negative")

    rng = np.random.default_rng(seed)
    random_phase = 2 * np.pi * rng.random(shape)
    peak = float(magnitude.max()) if magnitude.size else 0.0
    if peak == 0.0:
        return random_phase
    logmag = np.log(np.maximum(magnitude, peak * tol * 1e-3))
    time_step, freq_step = phase_increments(arrays["dm"], arrays["dn"], stft)
    if method == "pg":
        time_ok = arrays["lam"] > lam_time
        freq_ok = arrays["lam"] < lam_freq
        trapezoid, random_restart = step == "trapezoid", True
    else:
        time_ok = freq_ok = np.ones(shape, dtype=np.bool_)
        trapezoid, random_restart = True, False
    phase = heap_integrate_directed(
        logmag, time_step, freq_step, np.log(peak * tol), random_phase, QUANTUM,
        time_ok, freq_ok, trapezoid, random_restart,
    )  # fmt: skip
    # frame-centred → frame-start reference: the frame starts n_fft // 2 samples before its centre
    phase -= (2 * np.pi * (stft.n_fft // 2) / stft.n_fft) * np.arange(shape[1])[None, :]
    return phase
