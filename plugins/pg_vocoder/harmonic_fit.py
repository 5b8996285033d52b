"""Harmonic combs fitted to the low mel bands (a harmonic prior for the bottom register): a
melforge addition to the phase-gradient vocoder, not in seed 002, off by default.

Below about 1 kHz a Slaney mel of 80–96 bands has one band every 41 Hz, about 1.9 STFT bins at
22,050 Hz / 1024 (or 44,100 Hz / 2048). A note near C2 has a partial every 65 Hz, so each partial
is seen by about 1.6 bands: fitted one at a time (:mod:`melforge.plugins.pg_vocoder.partial_refinement`),
a frequency and a power per partial are underdetermined, and many wrong frequencies fit the
bands exactly. Tied to one fundamental — partials at ``h · f0``, each with its own power — the
same bands determine ``f0`` to a few thousandths of a bin.

Per frame, this module fits the mel power ``y`` of the *fit bands* (those that end below
``top_hz``) with a comb::

    y[b] ≈ Σ_h a_h R_b(h · f0),   h = 1 … H(f0),   a_h ≥ 0

where ``R_b(f) = Σ_m B[b, m] |W(m − f)|²`` is band ``b``'s response to a unit-power partial of
``f`` bins (:func:`melforge.plugins.pg_vocoder.partial_refinement.band_responses`) and ``H(f0)`` counts the
partials whose main lobe reaches below ``top_hz``. For one ``f0`` the powers are a non-negative
least-squares problem on the relative error (weights ``1 / (y[b] + ε·max y)²``), solved by
projected coordinate descent on the normal equations. ``f0`` is searched on
``[f0_min, 2 · f0_min)``, where ``f0_min`` makes ``H`` at most three quarters of the fit bands
(so the comb stays overdetermined); within that octave no comb is another's sub-multiple, and a
note above it is fitted by its sub-multiple comb, whose extra partials get (nearly) no power.
The search, per frame:

1. *tracking*: if the previous frame was accepted, three points ``fine`` apart around its
   ``f0`` (moved up to two steps while the best is at an edge) and a parabola, then the same in
   steps of ``fine / 4``;
2. otherwise (or if that fails) a *full search*: a coarse grid in steps of ``coarse`` over the
   octave, on the bands below ``top_hz / 2`` only (fewer partials, a wider basin); its
   ``candidates`` best local minima are scanned in steps of ``fine`` over ``±coarse`` on all fit
   bands, then searched as in 1 in steps of ``fine / 4``. After a full search fails, the next
   ``retry_frames - 1`` frames are not searched in full (held chords would cost a full search
   a frame).

A frame is accepted when its fit bands hold power (their maximum within ``min_level_db`` of the
frame's) and the mean relative squared error of the best comb is at most ``tau``, and accepted
frames must come in runs of ``min_run`` at one pitch (noise fits a comb now and then, seldom
three frames running).
:func:`apply_harmonic_combs` then rewrites, in accepted frames, the magnitude, Δm (seed 002 eq. 6)
and λ of the bins below ``top_hz`` from the comb. Frames that are not accepted (chords whose
partials the bands cannot separate, noise, silence) keep what they had.

At 1 kHz and the twin's geometry (22,050 Hz, 1024, 80 Slaney bands; the paper's 44.1 kHz,
2048, 96 bands has the same 23 fit bands) the search octave is 63–126 Hz, B1 to B2. A note below
it is fitted by no comb (a comb at ``2·f0`` misses its odd partials), and two notes whose combs
are not one (a fifth on C2, a triad) fail ``tau`` and keep the vocoder's estimate.

Not in seed 002, which has no step between the network and the integration (its network, of
1536 channels trained on 13 h of music, may or may not learn what the CPU twin cannot). Measured
effect and speed: ``benchmarks/RESULTS.md``, *Learned inversion*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from melforge.core.stft import StftParams
from .partial_refinement import (LOBE_HALF_WIDTH, MAX_FREQ_OFFSET, _bands_near, _lobe, _response, _tables,
                                                   band_support, lobe_power_table)

#: Fraction of the fit bands that the comb's partial count may reach (keeps it overdetermined).
MAX_PARTIALS_PER_BAND = 0.75
#: Projected coordinate-descent passes of the non-negative least squares.
NNLS_SWEEPS = 40
#: The descent stops when a pass lowers the squared error by less than this fraction of ``Σ w y²``.
NNLS_TOL = 1e-9
#: Most partials of a comb (bounds the work arrays).
MAX_PARTIALS = 64


@dataclass(frozen=True)
class HarmonicFit:
    """The combs fitted to a mel spectrogram.

    Attributes:
        f0: ``(frames,)`` fundamental of the comb, bins; NaN where the frame was not accepted.
        powers: ``(frames, partials)`` power of partial ``h + 1`` at its lobe's peak, in the
            squared units of the magnitude that made the mel (0 where not accepted or absent).
        cost: ``(frames,)`` mean relative squared error of the best comb over the fit bands
            (NaN where the fit bands hold no power or the frame was skipped).
        top: bins ``0 … top - 1`` are the ones the combs describe.
    """

    f0: np.ndarray
    powers: np.ndarray
    cost: np.ndarray
    top: int


@njit(cache=True)
def _comb_cost(values, offset, start, first, last, y, w, nb, f0, n_partials, amps, g, g_lo, g_hi, A, c, k_lo, k_hi):
    """Mean weighted squared error over bands ``0 … nb - 1`` of the best non-negative comb of
    ``n_partials`` partials at ``h · f0``. ``amps`` holds the powers: it is read as the starting
    point (the previous comb's, close by) and overwritten with the solution. ``g``, ``g_lo``,
    ``g_hi``, ``A``, ``c``, ``k_lo``, ``k_hi`` are work arrays. Partials that share no band do not
    interact, so ``A`` is banded: partial ``h`` meets ``k_lo[h] … k_hi[h]``."""
    width = g.shape[1]
    for h in range(n_partials):
        f = (h + 1) * f0
        b0, b1 = _bands_near(first, last, f, LOBE_HALF_WIDTH)
        b1 = min(b1, nb - 1, b0 + width - 1)
        g_lo[h], g_hi[h] = b0, b1
        for b in range(b0, b1 + 1):
            g[h, b - b0] = _response(values, offset, start, f, b)
        k_lo[h] = h
    for h in range(n_partials):
        ch = 0.0
        for b in range(g_lo[h], g_hi[h] + 1):
            ch += w[b] * g[h, b - g_lo[h]] * y[b]
        c[h] = ch
        k_hi[h] = h
        for k in range(h, n_partials):
            if g_lo[k] > g_hi[h] and k > h:
                break  # band ranges rise with h: no later partial meets h
            lo, hi = max(g_lo[h], g_lo[k]), min(g_hi[h], g_hi[k])
            s = 0.0
            for b in range(lo, hi + 1):
                s += w[b] * g[h, b - g_lo[h]] * g[k, b - g_lo[k]]
            A[h, k] = s
            A[k, h] = s
            k_hi[h] = k
            k_lo[k] = min(k_lo[k], h)
    for h in range(n_partials):
        if A[h, h] <= 0.0:
            amps[h] = 0.0
        elif not amps[h] >= 0.0:
            amps[h] = max(c[h], 0.0) / A[h, h]
    yy = 0.0
    for b in range(nb):
        yy += w[b] * y[b] * y[b]
    for _ in range(NNLS_SWEEPS):
        moved = 0.0  # decrease of the squared error in this pass
        for h in range(n_partials):
            if A[h, h] <= 0.0:
                continue
            s = c[h]
            for k in range(k_lo[h], k_hi[h] + 1):
                s -= A[h, k] * amps[k]
            new = max(0.0, amps[h] + s / A[h, h])
            moved += A[h, h] * (new - amps[h]) ** 2
            amps[h] = new
        if moved <= NNLS_TOL * yy:
            break
    fit = 0.0
    for h in range(n_partials):
        ah = 0.0
        for k in range(k_lo[h], k_hi[h] + 1):
            ah += A[h, k] * amps[k]
        fit += amps[h] * (ah - 2.0 * c[h])
    return max(yy + fit, 0.0) / nb


@njit(cache=True)
def _partials(f0, top):
    """Partials of a comb at ``f0`` whose main lobe starts below ``top`` bins (≤ MAX_PARTIALS)."""
    return min(max(int((top + LOBE_HALF_WIDTH) / f0), 1), MAX_PARTIALS)


@njit(cache=True)
def _local(values, offset, start, first, last, y, w, nb, top, centre, step, amps, g, g_lo, g_hi, A, c, k_lo, k_hi):
    """Bracket the minimum of the cost around ``centre`` with three points ``step`` apart, moving
    the bracket (up to two steps) while its best is at an edge, then a parabola through it:
    ``(f0, cost)``; ``amps`` holds the returned comb's powers."""
    lo = _comb_cost(values, offset, start, first, last, y, w, nb, centre - step, _partials(centre - step, top), amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
    mid = _comb_cost(values, offset, start, first, last, y, w, nb, centre, _partials(centre, top), amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
    hi = _comb_cost(values, offset, start, first, last, y, w, nb, centre + step, _partials(centre + step, top), amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
    for _ in range(2):
        if lo < mid and lo <= hi:
            centre -= step
            hi, mid = mid, lo
            f = centre - step
            lo = _comb_cost(values, offset, start, first, last, y, w, nb, f, _partials(f, top), amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
        elif hi < mid:
            centre += step
            lo, mid = mid, hi
            f = centre + step
            hi = _comb_cost(values, offset, start, first, last, y, w, nb, f, _partials(f, top), amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
        else:
            break
    f, best = centre, mid
    if lo < mid:
        f, best = centre - step, lo
    elif hi < mid:
        f, best = centre + step, hi
    else:
        curve = lo - 2.0 * mid + hi
        if curve > 0.0:
            f = centre + 0.5 * step * (lo - hi) / curve
    cost = _comb_cost(values, offset, start, first, last, y, w, nb, f, _partials(f, top), amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
    if cost > best:  # the parabola overshot: back to the bracket's best
        f = centre
        cost = _comb_cost(values, offset, start, first, last, y, w, nb, f, _partials(f, top), amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
    return f, cost


@njit(cache=True)
def _fit(mel_power, values, offset, start, first, last, nb, nb_coarse, top, top_coarse, f0_min, f0_max, coarse, fine,
         candidates, tau, min_level, eps_rel, retry, f0_out, powers_out, cost_out):  # fmt: skip
    n_frames = mel_power.shape[0]
    amps = np.full(MAX_PARTIALS, np.nan)  # NaN: no starting point yet
    best_amps = np.zeros(MAX_PARTIALS)
    g = np.zeros((MAX_PARTIALS, 16))
    g_lo = np.zeros(MAX_PARTIALS, dtype=np.int64)
    g_hi = np.zeros(MAX_PARTIALS, dtype=np.int64)
    A = np.zeros((MAX_PARTIALS, MAX_PARTIALS))
    c = np.zeros(MAX_PARTIALS)
    k_lo = np.zeros(MAX_PARTIALS, dtype=np.int64)
    k_hi = np.zeros(MAX_PARTIALS, dtype=np.int64)
    w = np.zeros(nb)
    n_grid = int(np.ceil((f0_max - f0_min) / coarse))
    grid_cost = np.empty(n_grid)
    prev = np.nan
    since = retry  # frames since the last failed full search
    for n in range(n_frames):
        y = mel_power[n]
        peak, low = y.max(), 0.0
        for b in range(nb):
            low = max(low, y[b])
        if peak <= 0.0 or low < min_level * peak:
            prev = np.nan
            continue
        floor = eps_rel * peak
        for b in range(nb):
            w[b] = 1.0 / (y[b] + floor) ** 2
        best_f, best_cost = np.nan, np.inf
        if not np.isnan(prev):
            f, _ = _local(values, offset, start, first, last, y, w, nb, top, prev, fine, amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
            best_f, best_cost = _local(values, offset, start, first, last, y, w, nb, top, f, fine / 4.0, amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
            best_amps[:] = amps
        since += 1
        if not best_cost <= tau and since < retry:
            prev = np.nan  # a full search failed lately: wait
            continue
        if not best_cost <= tau:
            for i in range(n_grid):
                f = f0_min + i * coarse
                grid_cost[i] = _comb_cost(values, offset, start, first, last, y, w, nb_coarse, f, _partials(f, top_coarse),
                                          amps, g, g_lo, g_hi, A, c, k_lo, k_hi)  # fmt: skip
            for _ in range(candidates):
                j, cj = -1, np.inf
                for i in range(n_grid):
                    is_min = (i == 0 or grid_cost[i] <= grid_cost[i - 1]) and (i == n_grid - 1 or grid_cost[i] <= grid_cost[i + 1])
                    if is_min and grid_cost[i] < cj:
                        j, cj = i, grid_cost[i]
                if j < 0:
                    break
                grid_cost[j] = np.inf
                # the coarse minimum, searched in fine steps over ±coarse, then locally
                centre, cbest = f0_min + j * coarse, np.inf
                steps = int(round(coarse / fine))
                for s in range(-steps, steps + 1):
                    f = f0_min + j * coarse + s * fine
                    cf = _comb_cost(values, offset, start, first, last, y, w, nb, f, _partials(f, top), amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
                    if cf < cbest:
                        centre, cbest = f, cf
                f, cf = _local(values, offset, start, first, last, y, w, nb, top, centre, fine / 4.0, amps, g, g_lo, g_hi, A, c, k_lo, k_hi)
                if cf < best_cost:
                    best_f, best_cost = f, cf
                    best_amps[:] = amps
        cost_out[n] = best_cost
        if best_cost <= tau:
            f0_out[n] = best_f
            for h in range(_partials(best_f, top)):
                powers_out[n, h] = best_amps[h]
            prev = best_f
        else:
            prev = np.nan
            since = 0


def _drop_short_runs(f0: np.ndarray, powers: np.ndarray, min_run: int, max_step: float = 0.02) -> None:
    """Un-accept (in place) frames in runs of fewer than ``min_run`` accepted frames whose ``f0``
    moves by at most ``max_step`` (relative) from frame to frame."""
    n, start = len(f0), 0
    while start < n:
        if np.isnan(f0[start]):
            start += 1
            continue
        end = start + 1
        while end < n and np.isfinite(f0[end]) and abs(f0[end] / f0[end - 1] - 1) <= max_step:
            end += 1
        if end - start < min_run:
            f0[start:end] = np.nan
            powers[start:end] = 0.0
        start = end


def fit_band_count(mel_basis: np.ndarray, top_bin: float) -> int:
    """How many of the (ascending) bands of ``mel_basis (n_mels, bins)`` end below ``top_bin``:
    the leading bands whose last non-zero bin is ``< top_bin`` (empty bands count)."""
    lo, hi, _, _ = band_support(mel_basis)
    below = (hi <= lo) | (hi - 1 < top_bin)
    return int(below.size if below.all() else np.argmin(below))


def fit_harmonic_combs(
    mel_power: np.ndarray,
    mel_basis: np.ndarray,
    stft: StftParams,
    *,
    top_hz: float = 1000.0,
    tau: float = 0.03,
    coarse: float = 0.04,
    fine: float = 0.005,
    candidates: int = 3,
    retry_frames: int = 4,
    min_run: int = 3,
    min_level_db: float = -30.0,
    eps_rel: float = 1e-4,
) -> HarmonicFit:
    """Fit a harmonic comb to the bands below ``top_hz`` of every frame (module docstring).

    Args:
        mel_power: ``(frames, n_mels)`` mel power (``|X|² Bᵀ``), ascending bands.
        mel_basis: ``(n_mels, bins)`` the filterbank ``B`` that made it.
        stft: its analysis geometry (Hann window; ``bins == stft.n_bins``).
        top_hz: the fit bands are those that end below this frequency, Hz; the combs describe the
            bins below it.
        tau: largest mean relative squared error over the fit bands of an accepted comb.
        coarse, fine: steps of the coarse grid and of the local search of ``f0``, bins.
        candidates: coarse local minima searched finely when a frame is not tracked.
        retry_frames: after a full search fails, the next ``retry_frames - 1`` frames skip it
            (and are not accepted): a held chord is searched every ``retry_frames`` frames.
        min_run: accepted frames must come in runs of at least this many, each ``f0`` within
            2 % of the previous one. A pitch holds; noise, which some comb fits now and then,
            seldom does so for three frames (on 3 s of white noise: 7 % of the frames accepted
            without this rule, none with it; at ``tau = 0.05``, 34 % and 14 %).
        min_level_db: frames whose fit bands peak more than this below the frame's peak are
            skipped, dB (power).
        eps_rel: relative floor of the weights ``1 / (y + eps_rel · max y)²``.

    Returns:
        :class:`HarmonicFit`.

    Raises:
        ValueError: shapes that disagree (named), negative or non-finite mel power, fewer than 4
            fit bands below ``top_hz``, or steps out of range.
    """
    basis = np.ascontiguousarray(mel_basis, dtype=np.float64)
    mel = np.ascontiguousarray(mel_power, dtype=np.float64)
    if basis.ndim != 2 or basis.shape[1] != stft.n_bins:
        raise ValueError(f"fit_harmonic_combs: mel_basis must be (n_mels, {stft.n_bins}), got {basis.shape}")
    if mel.ndim != 2 or mel.shape[1] != basis.shape[0]:
        raise ValueError(f"fit_harmonic_combs: mel_power must be (frames, {basis.shape[0]}), got {mel.shape}")
    if not np.isfinite(mel).all() or (mel < 0).any():
        raise ValueError("fit_harmonic_combs: mel_power must be finite and non-negative")
    if not (0 < fine <= coarse and tau > 0 and int(candidates) >= 1 and int(retry_frames) >= 1 and int(min_run) >= 1):
        raise ValueError(
            "fit_harmonic_combs: need 0 < fine <= coarse, tau > 0, candidates >= 1, retry_frames >= 1, min_run >= 1; "
            f"got fine={fine}, coarse={coarse}, tau={tau}, candidates={candidates}, retry_frames={retry_frames}, min_run={min_run}"
        )
    bin_hz = stft.sr / stft.n_fft
    top = float(top_hz) / bin_hz
    nb = fit_band_count(basis, top)
    nb_coarse = fit_band_count(basis, top / 2)
    if nb_coarse < 4:
        raise ValueError(f"fit_harmonic_combs: need at least 4 mel bands below top_hz/2 = {top_hz / 2:.0f} Hz, got {nb_coarse}")
    f0_min = (top + LOBE_HALF_WIDTH) / (MAX_PARTIALS_PER_BAND * nb)
    f0_max = 2.0 * f0_min
    _, values, offset, start, first, last = _tables(stft, basis.tobytes(), basis.shape)
    n = mel.shape[0]
    f0 = np.full(n, np.nan)
    powers = np.zeros((n, MAX_PARTIALS))
    cost = np.full(n, np.nan)
    _fit(mel, values, offset, start, first, last, nb, nb_coarse, top, top / 2, f0_min, f0_max, float(coarse), float(fine),
         int(candidates), float(tau), 10.0 ** (min_level_db / 10.0), float(eps_rel), int(retry_frames), f0, powers,
         cost)  # fmt: skip
    _drop_short_runs(f0, powers, int(min_run))
    return HarmonicFit(f0, powers, cost, int(np.floor(top)))


@njit(cache=True)
def _apply(table, f0, powers, top, magnitude, dm, lam):
    for n in range(f0.shape[0]):
        if np.isnan(f0[n]):
            continue
        for m in range(top):
            p, best_d, off = 0.0, np.inf, 0.0
            for h in range(powers.shape[1]):
                if powers[n, h] <= 0.0:
                    continue
                d = m - (h + 1) * f0[n]
                if abs(d) < LOBE_HALF_WIDTH:
                    p += powers[n, h] * _lobe(table, d)
                if abs(d) < best_d:
                    best_d, off = abs(d), -d
            magnitude[n, m] = np.sqrt(p)
            dm[n, m] = min(max(off, -MAX_FREQ_OFFSET), MAX_FREQ_OFFSET)
            lam[n, m] = 1.0


def apply_harmonic_combs(
    fit: HarmonicFit, magnitude: np.ndarray, dm: np.ndarray, lam: np.ndarray, stft: StftParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rewrite the bins below ``fit.top`` of the accepted frames from their combs.

    A bin ``m`` gets the magnitude ``sqrt(Σ_h a_h |W(m − h·f0)|²)``, the offset ``Δm`` to the
    nearest partial (clipped to ±4 bins, §3.1) and ``λ = 1`` (sinusoidal).

    Args:
        fit: from :func:`fit_harmonic_combs` on the mel of these estimates.
        magnitude, dm, lam: ``(frames, bins)`` the vocoder's linear magnitude, Δm (bins) and λ.
        stft: the analysis geometry.

    Returns:
        ``(magnitude, dm, lam)``: new ``(frames, bins)`` float64 arrays.

    Raises:
        ValueError: shapes that disagree with ``fit`` or each other (named).
    """
    arrays = {"magnitude": magnitude, "dm": dm, "lam": lam}
    out = {k: np.array(v, dtype=np.float64, order="C") for k, v in arrays.items()}
    shape = (fit.f0.shape[0], stft.n_bins)
    for key, value in out.items():
        if value.shape != shape:
            raise ValueError(f"apply_harmonic_combs: {key} must be (frames, bins) = {shape}, got {value.shape}")
    _apply(lobe_power_table(stft), fit.f0, fit.powers, min(fit.top, stft.n_bins), out["magnitude"], out["dm"], out["lam"])
    return out["magnitude"], out["dm"], out["lam"]
