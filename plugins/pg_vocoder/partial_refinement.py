"""Partial frequencies refined against the mel they came from (analysis by synthesis): a melforge
addition to the phase-gradient vocoder, not in seed 002, off by default.

A vocoder that predicts the frequency offsets Δm (seed 002 eq. 6) from a mel spectrogram gets a
partial's frequency only roughly: after the twin's training the power-weighted error is about
0.3 bins, mostly a bias that stays for the whole note (``benchmarks/RESULTS.md``), while a stable
low note needs a few hundredths of a bin. The mel itself still holds the frequency: a sinusoid of
``f`` bins spreads the Hann window's main lobe over two or three overlapping triangular filters,
and their ratios move continuously with ``f``.

This module fits, frame by frame, a sum of windowed sinusoids to the given mel power::

    P_mel[b] ≈ Σ_k a_k Σ_m B[b, m] |W(m − f_k)|²

where ``B`` is the filterbank ``(n_mels, bins)``, ``|W(δ)|²`` the power response of the analysis
window ``δ`` bins off its centre (tabulated from the window's oversampled DFT) and ``(f_k, a_k)``
one frequency (bins) and power per spectral peak of the vocoder's predicted magnitude. Starting
from the vocoder's ``f_k = m_k + Δm̂[m_k]``, each peak in turn is moved to the frequency within
``±search`` bins that minimises the relative squared error of the mel bands it reaches, with its
power solved in closed form and the other peaks held (coordinate descent, ``sweeps`` passes; a
coarse grid and a parabola through its best three points, then a parabola through that point and
its neighbours ``step`` away). Each band's response ``Σ_m B[b, m] |W(m − f)|²`` is tabulated
against ``f`` once per geometry (:func:`band_responses`). The bins within the main lobe of a
refined partial that the vocoder calls sinusoidal (``λ̂ > lam_min``) then get ``Δm = f_k − m``
(from the nearest partial).

Limits, measured on the N+C set (``benchmarks/vocoders.py --variants``): with fewer than about
two mel bands per partial (a C2 note's partials are 3.04 bins apart, the 80 bands 1.9 bins apart
below 1 kHz at 22,050 Hz), the fit is exact for many wrong frequencies, and where the vocoder
merged two partials into one peak (chords on low roots) it cannot separate them either.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.signal
from numba import njit

from melforge.core.stft import StftParams

#: Oversampling of the tabulated window response (points per bin).
OVERSAMPLE = 256
#: Half-width of the modelled window response, bins (the Hann main lobe is ±2, the rest sidelobes).
LOBE_HALF_WIDTH = 4
#: §3.1's clip of the frequency offsets, bins.
MAX_FREQ_OFFSET = 4.0
#: Points per bin of the tabulated band responses.
RESPONSE_OVERSAMPLE = 64
#: The coarse grid's step is ``COARSE · step``; the fine search spans ``±FINE_HALF_WIDTH · step``
#: around the coarse grid's parabola.
COARSE = 5
FINE_HALF_WIDTH = 1


@functools.lru_cache(maxsize=8)
def lobe_power_table(stft: StftParams) -> np.ndarray:
    """``|W(δ)|²`` of the periodic Hann window of ``stft.win_length`` samples (zero-padded to
    ``n_fft``) at ``δ = −4 … 4`` bins in steps of ``1/256`` bin, normalised to 1 at ``δ = 0``:
    ``(2·4·256 + 1,)`` float64, cached per geometry (read-only)."""
    n = stft.n_fft
    window = np.zeros(n)
    start = (n - stft.win_length) // 2
    window[start : start + stft.win_length] = scipy.signal.get_window("hann", stft.win_length, fftbins=True)
    spectrum = np.fft.fft(window, n * OVERSAMPLE)
    k = np.arange(-LOBE_HALF_WIDTH * OVERSAMPLE, LOBE_HALF_WIDTH * OVERSAMPLE + 1)
    power = np.abs(spectrum[k % (n * OVERSAMPLE)]) ** 2
    table = power / power.max()
    table.flags.writeable = False
    return table


def band_support(mel_basis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where each mel band and each bin reach, from ``mel_basis (n_mels, bins)``.

    Returns:
        ``(lo, hi, first, last)``: band ``b`` covers bins ``lo[b] ≤ m < hi[b]`` (``(n_mels,)``
        int64; an empty band has ``lo = hi = 0``); bin ``m`` is covered by bands
        ``first[m] … last[m]`` at most (``(bins,)`` int64; ``first > last`` where none).
    """
    nonzero = np.asarray(mel_basis) > 0
    n_mels, n_bins = nonzero.shape
    lo = np.zeros(n_mels, dtype=np.int64)
    hi = np.zeros(n_mels, dtype=np.int64)
    for b in range(n_mels):
        idx = np.flatnonzero(nonzero[b])
        if idx.size:
            lo[b], hi[b] = idx[0], idx[-1] + 1
    first = np.full(n_bins, n_mels, dtype=np.int64)
    last = np.full(n_bins, -1, dtype=np.int64)
    for b in range(n_mels):
        if hi[b] > lo[b]:
            first[lo[b] : hi[b]] = np.minimum(first[lo[b] : hi[b]], b)
            last[lo[b] : hi[b]] = np.maximum(last[lo[b] : hi[b]], b)
    return lo, hi, first, last


def band_responses(
    mel_basis: np.ndarray, table: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every mel band's response to a unit-power partial, tabulated against its frequency.

    ``R_b(f) = Σ_m B[b, m] |W(m − f)|²`` for ``f`` from ``lo[b] − 4`` to ``hi[b] + 4`` bins in
    steps of ``1/64`` bin (zero outside), from ``mel_basis (n_mels, bins)``, the window table of
    :func:`lobe_power_table` and the bands' bin ranges ``lo``, ``hi`` of :func:`band_support`.

    Returns:
        ``(values, offset, start)``: band ``b``'s table is ``values[offset[b] : offset[b + 1]]``,
        its first point at ``start[b]`` bins.
    """
    basis = np.asarray(mel_basis, dtype=np.float64)
    per_bin = (len(table) - 1) // (2 * LOBE_HALF_WIDTH)
    starts = (lo - LOBE_HALF_WIDTH).astype(np.float64)
    counts = np.where(hi > lo, (hi - lo + 2 * LOBE_HALF_WIDTH) * RESPONSE_OVERSAMPLE + 1, 0)
    offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    values = np.zeros(offset[-1])
    lobe_x = (np.arange(len(table)) - (len(table) - 1) // 2) / per_bin  # δ of each table point, bins
    for b in np.flatnonzero(counts):
        f = starts[b] + np.arange(counts[b]) / RESPONSE_OVERSAMPLE
        m = np.arange(lo[b], hi[b])
        lobes = np.interp(m[None, :] - f[:, None], lobe_x, table, left=0.0, right=0.0)  # (points, width)
        values[offset[b] : offset[b + 1]] = lobes @ basis[b, lo[b] : hi[b]]
    return values, offset, starts


@functools.lru_cache(maxsize=8)
def _tables(stft: StftParams, basis_bytes: bytes, shape: tuple[int, int]):
    """The window table, the band responses and the band coverage of one geometry (cached: a
    vocoder inverts many clips with one filterbank)."""
    basis = np.frombuffer(basis_bytes, dtype=np.float64).reshape(shape)
    lo, hi, first, last = band_support(basis)
    table = lobe_power_table(stft)
    return (table, *band_responses(basis, table, lo, hi), first, last)


@njit(cache=True)
def _lobe(table, delta):
    x = (delta + LOBE_HALF_WIDTH) * OVERSAMPLE
    if x <= 0.0 or x >= 2 * LOBE_HALF_WIDTH * OVERSAMPLE:
        return 0.0
    i = int(x)
    t = x - i
    return table[i] * (1.0 - t) + table[i + 1] * t


@njit(cache=True)
def _response(values, offset, start, f, b):
    """Mel band ``b``'s response to a unit-power partial at ``f`` bins (linear interpolation)."""
    x = (f - start[b]) * RESPONSE_OVERSAMPLE
    last = offset[b + 1] - offset[b] - 1
    if x <= 0.0 or x >= last:
        return 0.0
    i = int(x)
    t = x - i
    j = offset[b] + i
    return values[j] * (1.0 - t) + values[j + 1] * t


@njit(cache=True)
def _bands_near(first, last, f, reach):
    """The bands that bins within ``reach`` of ``f`` fall in: ``(b0, b1)``, empty if ``b0 > b1``."""
    n_bins = first.shape[0]
    m0 = max(0, int(np.floor(f - reach)))
    m1 = min(n_bins - 1, int(np.ceil(f + reach)))
    b0, b1 = 1 << 30, -1
    for m in range(m0, m1 + 1):
        if first[m] <= last[m]:
            b0 = min(b0, first[m])
            b1 = max(b1, last[m])
    return b0, b1


@njit(cache=True)
def _cost(values, offset, start, r, w, b0, f):
    """Weighted squared error of the residual ``r`` against the best non-negative multiple of a
    partial at ``f``: ``(cost, power)``."""
    sgg, sgr, srr = 0.0, 0.0, 0.0
    for j in range(r.shape[0]):
        g = _response(values, offset, start, f, b0 + j)
        sgg += w[j] * g * g
        sgr += w[j] * g * r[j]
        srr += w[j] * r[j] * r[j]
    if sgg <= 0.0 or sgr <= 0.0:
        return srr, 0.0
    return srr - sgr * sgr / sgg, sgr / sgg


@njit(cache=True)
def _grid_search(values, offset, start, r, w, b0, centre, half, step):
    """Best point of a grid ``centre ± half`` in steps of ``step``, refined by a parabola through
    it and its neighbours: ``f``, bins."""
    n = int(round(2.0 * half / step)) + 1
    best, best_i = np.inf, 0
    c_prev, c_next = np.inf, np.inf
    last = np.inf
    for i in range(n):
        c, _ = _cost(values, offset, start, r, w, b0, centre - half + i * step)
        if c < best:
            best, best_i, c_prev, c_next = c, i, last, np.inf
        elif i == best_i + 1:
            c_next = c
        last = c
    f = centre - half + best_i * step
    if 0 < best_i < n - 1:
        curve = c_prev - 2.0 * best + c_next
        if curve > 0.0:
            f += 0.5 * step * (c_prev - c_next) / curve
    return f


@njit(cache=True)
def _refine_frame(y, values, offset, start, first, last, fs, amps, free, search, step, sweeps, eps_rel):
    """Coordinate descent of the peaks ``fs`` (bins) and ``amps`` (power) of one frame against
    its mel power ``y (n_mels,)``; updates both in place. Only peaks with ``free[k]`` move; the
    others stay in the model as they are. Each sweep searches ``±search`` in steps of
    ``COARSE·step`` (parabola through the best three), then ``±FINE_HALF_WIDTH·step`` around
    that in steps of ``step`` (another parabola)."""
    n_mels = y.shape[0]
    n_peaks = fs.shape[0]
    model = np.zeros(n_mels)
    for k in range(n_peaks):
        b0, b1 = _bands_near(first, last, fs[k], LOBE_HALF_WIDTH)
        for b in range(b0, b1 + 1):
            model[b] += amps[k] * _response(values, offset, start, fs[k], b)
    floor = eps_rel * y.max()
    coarse = COARSE * step
    for _ in range(sweeps):
        reach = search + LOBE_HALF_WIDTH
        for k in range(n_peaks):
            if not free[k]:
                continue
            f0 = fs[k]
            b0, b1 = _bands_near(first, last, f0, reach)
            if b1 < b0:
                continue
            nb = b1 - b0 + 1
            r = np.empty(nb)
            w = np.empty(nb)
            for j in range(nb):
                b = b0 + j
                r[j] = y[b] - model[b] + amps[k] * _response(values, offset, start, f0, b)
                w[j] = 1.0 / (y[b] + floor) ** 2
            centre = _grid_search(values, offset, start, r, w, b0, f0, search, coarse)
            f_new = _grid_search(values, offset, start, r, w, b0, centre, FINE_HALF_WIDTH * step, step)
            f_new = min(max(f_new, f0 - search), f0 + search)
            _, a_new = _cost(values, offset, start, r, w, b0, f_new)
            for j in range(nb):
                b = b0 + j
                model[b] += a_new * _response(values, offset, start, f_new, b) - amps[k] * _response(values, offset, start, f0, b)
            fs[k], amps[k] = f_new, a_new


@njit(cache=True)
def _refine(mel_power, values, offset, start, first, last, table, magnitude, dm, lam, fixed_below, out, search, step,
            sweeps, floor_rel, lam_min, assign_half, eps_rel):  # fmt: skip
    n_frames, n_bins = magnitude.shape
    peaks = np.empty(n_bins, dtype=np.int64)
    nearest = np.empty(n_bins)
    for n in range(n_frames):
        row = magnitude[n]
        threshold = row.max() * floor_rel
        count = 0
        for m in range(1, n_bins - 1):
            if row[m] > row[m - 1] and row[m] >= row[m + 1] and row[m] > threshold:
                peaks[count] = m
                count += 1
        if count == 0:
            continue
        fs = np.empty(count)
        amps = np.empty(count)
        free = np.empty(count, dtype=np.bool_)
        for k in range(count):
            m = peaks[k]
            fs[k] = m + dm[n, m]
            amps[k] = row[m] ** 2 / max(_lobe(table, m - fs[k]), 1e-3)
            free[k] = lam[n, m] > lam_min and m >= fixed_below[n]
        _refine_frame(mel_power[n], values, offset, start, first, last, fs, amps, free, search, step, sweeps, eps_rel)
        nearest[:] = np.inf
        for k in range(count):
            if not free[k]:
                continue
            lo_bin = max(0, int(np.ceil(fs[k] - assign_half)))
            hi_bin = min(n_bins - 1, int(np.floor(fs[k] + assign_half)))
            for mm in range(lo_bin, hi_bin + 1):
                d = abs(fs[k] - mm)
                if lam[n, mm] > lam_min and d < nearest[mm]:
                    nearest[mm] = d
                    out[n, mm] = min(max(fs[k] - mm, -MAX_FREQ_OFFSET), MAX_FREQ_OFFSET)


def _checked_inputs(
    mel_power: np.ndarray, mel_basis: np.ndarray, magnitude: np.ndarray, dm: np.ndarray, lam: np.ndarray, stft: StftParams,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """:func:`refine_frequency_offsets`' arrays checked: ``({"magnitude", "dm", "lam"}, basis, mel)``,
    contiguous float64.

    Raises:
        ValueError: see :func:`refine_frequency_offsets`.
    """
    arrays = {"magnitude": magnitude, "dm": dm, "lam": lam}
    arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}
    shape = arrays["magnitude"].shape
    for key, value in arrays.items():
        if value.ndim != 2 or value.shape != shape or shape[1] != stft.n_bins:
            raise ValueError(f"refine_frequency_offsets: {key} must be (frames, {stft.n_bins}) like magnitude {shape}, got {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"refine_frequency_offsets: {key} holds non-finite values")
    basis = np.ascontiguousarray(mel_basis, dtype=np.float64)
    mel = np.ascontiguousarray(mel_power, dtype=np.float64)
    if basis.ndim != 2 or basis.shape[1] != stft.n_bins:
        raise ValueError(f"refine_frequency_offsets: mel_basis must be (n_mels, {stft.n_bins}), got {basis.shape}")
    if mel.shape != (shape[0], basis.shape[0]):
        raise ValueError(f"refine_frequency_offsets: mel_power must be (frames, n_mels) = {(shape[0], basis.shape[0])}, got {mel.shape}")
    if not np.isfinite(mel).all() or (mel < 0).any() or (arrays["magnitude"] < 0).any():
        raise ValueError("refine_frequency_offsets: mel_power and magnitude must be finite and non-negative")
    return arrays, basis, mel


def refine_frequency_offsets(
    mel_power: np.ndarray,
    mel_basis: np.ndarray,
    magnitude: np.ndarray,
    dm: np.ndarray,
    lam: np.ndarray,
    stft: StftParams,
    *,
    search: float = 1.0,
    step: float = 0.05,
    sweeps: int = 2,
    floor_db: float = 40.0,
    lam_min: float = 0.5,
    assign_half_width: float = 2.0,
    eps_rel: float = 1e-4,
    fixed_below: np.ndarray | None = None,
) -> np.ndarray:
    """Refine the frequency offsets of every spectral peak against the mel (module docstring).

    Args:
        mel_power: ``(frames, n_mels)`` mel power the estimates came from (``|X|² Bᵀ``).
        mel_basis: ``(n_mels, bins)`` the filterbank ``B`` that made it.
        magnitude: ``(frames, bins)`` estimated linear magnitude; its local maxima within
            ``floor_db`` dB of the frame's largest are the peaks refined.
        dm: ``(frames, bins)`` estimated frequency offsets Δm, bins (seed 002 eq. 6); a peak
            starts at ``m + dm[m]``.
        lam: ``(frames, bins)`` estimated classification λ (the vocoder's λ channel); only peaks with
            ``λ > lam_min`` at their maximum move (the others stay in the fit as estimated), and
            only bins with ``λ > lam_min`` take a refined offset.
        stft: the analysis geometry (Hann window of ``win_length``; ``bins == stft.n_bins``).
        search: how far a peak may move, bins.
        step: fine step of the search, bins: each sweep tries ``±search`` in steps of
            ``5·step`` and fits a parabola through the best three points, then fits another
            through that point and its neighbours ``step`` away.
        sweeps: coordinate-descent passes over the peaks of a frame.
        floor_db: peaks more than this below the frame's largest are left as they are, dB.
        lam_min: λ above which a bin counts as sinusoidal.
        assign_half_width: bins within this distance of a refined partial (its main lobe, ±2
            for the Hann window) take its frequency; the nearest partial wins.
        eps_rel: relative floor of the mel bands' weights ``1 / (P_mel + eps_rel·max P_mel)²``.
        fixed_below: ``(frames,)`` int, optional: in frame ``n`` the peaks below bin
            ``fixed_below[n]`` stay as estimated (their bins are described otherwise, e.g. by
            :mod:`melforge.plugins.pg_vocoder.harmonic_fit`); they still count in the fit.

    Returns:
        ``(frames, bins)`` float64 Δm, bins, clipped to ``±4`` (§3.1); bins away from refined
        peaks keep ``dm``.

    Raises:
        ValueError: shapes that disagree (named), non-finite or negative inputs, or
            ``search``, ``step``, ``sweeps`` out of range.
    """
    arrays, basis, mel = _checked_inputs(mel_power, mel_basis, magnitude, dm, lam, stft)
    shape = arrays["magnitude"].shape
    if not (0 < search <= MAX_FREQ_OFFSET and 0 < COARSE * step <= search and int(sweeps) >= 1 and assign_half_width >= 0):
        raise ValueError(
            f"refine_frequency_offsets: need 0 < 5·step <= search <= 4, sweeps >= 1, assign_half_width >= 0; "
            f"got search={search}, step={step}, sweeps={sweeps}, assign_half_width={assign_half_width}"
        )
    fixed = np.zeros(shape[0], dtype=np.int64) if fixed_below is None else np.asarray(fixed_below, dtype=np.int64)
    if fixed.shape != (shape[0],):
        raise ValueError(f"refine_frequency_offsets: fixed_below must be (frames,) = ({shape[0]},), got {fixed.shape}")
    table, values, offset, start, first, last = _tables(stft, basis.tobytes(), basis.shape)
    out = arrays["dm"].copy()
    _refine(mel, values, offset, start, first, last, table, arrays["magnitude"], arrays["dm"], arrays["lam"], fixed,
            out, float(search), float(step), int(sweeps), 10.0 ** (-floor_db / 20.0), float(lam_min),
            float(assign_half_width), float(eps_rel))  # fmt: skip
    return out
