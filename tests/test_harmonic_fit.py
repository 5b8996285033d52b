"""Harmonic combs fitted to the low mel bands (plugins/pg_vocoder/harmonic_fit.py)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from melforge.core.stft import StftParams, stft_magnitude
from melforge.plugins.pg_vocoder.harmonic_fit import apply_harmonic_combs, fit_band_count, fit_harmonic_combs
from melforge.plugins.pg_vocoder.partial_refinement import refine_frequency_offsets

STFT = StftParams(22050, 1024, 256, 1024)
BASIS = librosa.filters.mel(sr=STFT.sr, n_fft=STFT.n_fft, n_mels=80, fmin=0.0, fmax=STFT.sr / 2)  # (80, 513)
BIN_HZ = STFT.sr / STFT.n_fft
INNER = slice(4, -4)  # frames whose window lies wholly inside the signal


def _mel_power(audio: np.ndarray) -> np.ndarray:
    return stft_magnitude(audio, STFT) ** 2 @ BASIS.T.astype(np.float64)  # (frames, 80)


def _harmonic(f0_bins: float, n_partials: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * STFT.sr)) / STFT.sr
    return sum(np.sin(2 * np.pi * h * f0_bins * BIN_HZ * t + 0.7 * h) / h for h in range(1, n_partials + 1))


def test_fit_bands_are_the_bands_below_the_top():
    nb = fit_band_count(BASIS, 1000 / BIN_HZ)
    assert np.flatnonzero(BASIS[nb - 1])[-1] < 1000 / BIN_HZ <= np.flatnonzero(BASIS[nb])[-1]


@pytest.mark.parametrize("f0_bins, per_peak_error", [(3.3, 0.05), (4.71, 0.0)])
def test_a_comb_between_bins_is_found_where_single_partials_are_not(f0_bins, per_peak_error):
    """A harmonic tone of 16 partials, 1/h amplitudes, f0 between bins (71 and 101 Hz: about 1.7
    and 2.5 mel bands per partial). Every inner frame is accepted with f0 within 0.004 bins (2 cents at 71 Hz), the
    comb's powers give back the fit bands' mel within 2 % RMS and 10 % at most (the
    lobes' cross terms are not modelled), and the rewritten Δm points every
    main-lobe bin below 1 kHz at its partial within 0.02 bins (mostly much closer). The partials fitted one at a time
    from the same mel, started 0.4 bins off, end further off; at 71 Hz by more than 0.05 bins
    on average: there the comb is what settles them."""
    audio = _harmonic(f0_bins, 16)
    mel = _mel_power(audio)
    fit = fit_harmonic_combs(mel, BASIS, STFT)
    assert np.isfinite(fit.f0[INNER]).all()
    np.testing.assert_allclose(fit.f0[INNER], f0_bins, atol=0.004)
    assert np.nanmax(fit.cost[INNER]) < 1e-3

    n = mel.shape[0]
    magnitude, dm, lam = apply_harmonic_combs(fit, np.zeros((n, STFT.n_bins)), np.zeros((n, STFT.n_bins)),
                                              np.zeros((n, STFT.n_bins)), STFT)  # fmt: skip
    nb = fit_band_count(BASIS, fit.top)
    rewritten = magnitude**2 @ BASIS.T.astype(np.float64)
    rel = np.abs(rewritten[INNER, : nb - 2] / mel[INNER, : nb - 2] - 1)
    assert np.sqrt(np.mean(rel**2)) < 0.02 and rel.max() < 0.1
    partials = f0_bins * np.arange(1, 17)
    bins = np.arange(fit.top)
    lobe = [m for m in bins if np.abs(partials - m).min() < 1.0]
    nearest = partials[np.abs(partials[None, :] - np.array(lobe)[:, None]).argmin(axis=1)]
    np.testing.assert_allclose(dm[INNER][:, lobe] + np.array(lobe), np.broadcast_to(nearest, (n - 8, len(lobe))), atol=0.02)
    assert (lam[INNER][:, : fit.top] == 1).all() and (magnitude[:, fit.top :] == 0).all()

    true = stft_magnitude(audio, STFT)
    start = np.full_like(true, 0.4)  # a 0.4-bin bias everywhere
    peaks_dm = refine_frequency_offsets(mel, BASIS, true, start, np.ones_like(true), STFT)
    per_peak = np.abs(peaks_dm[INNER][:, lobe] + np.array(lobe) - nearest).mean()
    comb = np.abs(dm[INNER][:, lobe] + np.array(lobe) - nearest).mean()
    assert comb < 0.01 and comb < per_peak and per_peak > per_peak_error


def test_fixed_peaks_keep_their_offsets():
    """``fixed_below``: peaks under that bin stay as given in their frame, the others move."""
    audio = _harmonic(6.2, 10)
    mel = _mel_power(audio)
    true = stft_magnitude(audio, STFT)
    start = np.full_like(true, 0.3)
    fixed = np.zeros(mel.shape[0], dtype=int)
    fixed[10] = 40
    out = refine_frequency_offsets(mel, BASIS, true, start, np.ones_like(true), STFT, fixed_below=fixed)
    assert (out[10, :38] == 0.3).all()
    assert (out[11, :38] != 0.3).any()
    with pytest.raises(ValueError, match="fixed_below must be"):
        refine_frequency_offsets(mel, BASIS, true, start, np.ones_like(true), STFT, fixed_below=fixed[:-1])


def test_noise_and_silence_are_not_taken_for_a_comb():
    """White noise: some comb fits a frame's bands within ``tau`` now and then (a few percent of
    the frames, more at a looser ``tau``), but seldom three frames running at one pitch."""
    rng = np.random.default_rng(0)
    mel = _mel_power(rng.standard_normal(3 * STFT.sr))
    accepted = lambda **kw: np.isfinite(fit_harmonic_combs(mel, BASIS, STFT, **kw).f0).mean()  # noqa: E731
    assert accepted() < 0.01 and accepted(min_run=1) > 0.03
    assert accepted(tau=0.05, min_run=1) > 0.2 > accepted(tau=0.05) + 0.03
    silence = fit_harmonic_combs(np.zeros((20, 80)), BASIS, STFT)
    assert np.isnan(silence.f0).all() and (silence.powers == 0).all()


@pytest.mark.parametrize("instrument, midi", [("rhodes", 36), ("nylon_guitar", 39), ("church_organ", 42)])
def test_low_notes_of_the_nc_set_get_their_pitch(instrument, midi):
    """Real notes below A2 (FluidSynth, N+C set): over 70 % of the voiced frames are accepted (an
    organ's slow attack is not) and the median
    fitted f0 is within 10 cents of the note's nominal pitch (the rendered samples are tuned to
    within 5 cents, ``test_notes_chords``)."""
    from melforge.datasets.notes_chords import nc_items, render_items

    item = render_items([i for i in nc_items([instrument], ["note"]) if i.midi == (midi,)], STFT.sr)[0]
    mel = _mel_power(item.audio.astype(np.float64))
    fit = fit_harmonic_combs(mel, BASIS, STFT)
    voiced = mel.sum(axis=1) > 1e-3 * mel.sum(axis=1).max()
    assert np.isfinite(fit.f0[voiced]).mean() > 0.7
    cents = 1200 * np.log2(np.nanmedian(fit.f0) * BIN_HZ / item.hz[0])
    assert abs(cents) < 10


@pytest.mark.parametrize(
    "kwargs, match",
    [({"mel_power": np.ones((9, 81))}, "mel_power must be"), ({"mel_basis": np.ones((80, 100))}, "mel_basis must be"),
     ({"mel_power": -np.ones((9, 80))}, "non-negative"), ({"fine": 0.1}, "fine <= coarse"),
     ({"top_hz": 100.0}, "at least 4 mel bands")],
)
def test_bad_input_is_named(kwargs, match):
    args = {"mel_power": np.ones((9, 80)), "mel_basis": BASIS, "stft": STFT}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit_harmonic_combs(**args)
