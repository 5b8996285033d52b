"""Partial frequencies refined against the mel (plugins/pg_vocoder/partial_refinement.py)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from melforge.core.stft import StftParams, stft_magnitude
from melforge.plugins.pg_vocoder.partial_refinement import band_support, lobe_power_table, refine_frequency_offsets
from melforge.core.dsp.phase_targets import phase_targets

STFT = StftParams(22050, 1024, 256, 1024)
BASIS = librosa.filters.mel(sr=STFT.sr, n_fft=STFT.n_fft, n_mels=80, fmin=0.0, fmax=STFT.sr / 2)  # (80, 513)


def _mel_power(audio: np.ndarray) -> np.ndarray:
    return stft_magnitude(audio, STFT) ** 2 @ BASIS.T.astype(np.float64)  # (frames, 80)


def test_lobe_table_is_the_hann_power_response():
    """|W(δ)|² of the periodic Hann window: 1 at δ = 0, 1/4 at one bin (the Hann DFT is
    [−¼, ½, −¼]), zero at two bins (the main lobe's edge), symmetric."""
    table = lobe_power_table(STFT)
    centre = (len(table) - 1) // 2
    per_bin = centre // 4
    assert table[centre] == pytest.approx(1.0)
    assert table[centre + per_bin] == pytest.approx(0.25, rel=1e-6)
    assert table[centre + 2 * per_bin] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(table, table[::-1], atol=1e-12)


def test_band_support_covers_every_nonzero_weight():
    lo, hi, first, last = band_support(BASIS)
    for b in range(BASIS.shape[0]):
        idx = np.flatnonzero(BASIS[b] > 0)
        assert (lo[b], hi[b]) == (idx[0], idx[-1] + 1)
        assert all(first[m] <= b <= last[m] for m in idx)


def test_sinusoids_are_found_to_a_hundredth_of_a_bin():
    """Three stationary sinusoids between bins (low, middle and high mel bands), mel computed from
    the audio; the estimate starts 0.4 bins off. After refinement every main-lobe bin reassigns to
    the true frequency within 0.01 bins — the mel alone fixes the frequency."""
    freqs, amps = (20.3, 97.71, 301.45), (1.0, 0.3, 0.05)
    t = np.arange(STFT.sr) / STFT.sr
    audio = sum(a * np.sin(2 * np.pi * f * STFT.sr / STFT.n_fft * t + k) for k, (f, a) in enumerate(zip(freqs, amps)))
    magnitude = stft_magnitude(audio, STFT)
    bins = np.arange(STFT.n_bins)[None, :]
    true_dm = np.zeros_like(magnitude)
    for f in freqs:
        near = np.abs(bins - f) < 2.5
        true_dm = np.where(near, f - bins, true_dm) * np.ones_like(magnitude)
    start = true_dm + 0.4
    lam = np.ones_like(magnitude)
    refined = refine_frequency_offsets(_mel_power(audio), BASIS, magnitude, start, lam, STFT)
    inner = slice(4, -4)
    for f in freqs:
        lobe = [m for m in range(int(f) - 1, int(f) + 3) if abs(m - f) <= 2]
        np.testing.assert_allclose(refined[inner][:, lobe] + np.array(lobe), f, atol=0.01)
    far = np.abs(bins[0] - 200) < 20  # no peak there: left as it was
    np.testing.assert_array_equal(refined[:, far], start[:, far])


def test_refinement_on_a_real_note_cuts_the_frequency_error(nc_note_a3):
    """A Rhodes A3 from the N+C set (FluidSynth): true magnitude and λ, Δm biased by 0.3 bins;
    the power-weighted RMS error of Δm on its sinusoidal main-lobe bins falls below 0.05 bins."""
    audio = nc_note_a3
    tg = phase_targets(audio, STFT)
    refined = refine_frequency_offsets(_mel_power(audio), BASIS, tg.magnitude, tg.dm + 0.3, tg.lam, STFT)
    w = tg.magnitude**2 * (tg.lam > 0.5)
    rms = lambda dm: float(np.sqrt((w * (dm - tg.dm) ** 2).sum() / w.sum()))  # noqa: E731
    assert rms(tg.dm + 0.3) == pytest.approx(0.3)
    assert rms(refined) < 0.05


@pytest.fixture(scope="module")
def nc_note_a3() -> np.ndarray:
    from melforge.datasets.notes_chords import nc_items, render_items

    items = [i for i in nc_items(["rhodes"], ["note"]) if i.midi == (57,)]
    return render_items(items, STFT.sr)[0].audio.astype(np.float64)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"dm": np.zeros((5, 513))}, "dm must be"), ({"mel_power": np.ones((4, 80))}, "mel_power must be"),
     ({"step": 0.5}, "step <= search"), ({"magnitude": -np.ones((9, 513))}, "non-negative")],
)
def test_bad_input_is_named(kwargs, match):
    args = {"mel_power": np.ones((9, 80)), "mel_basis": BASIS, "magnitude": np.ones((9, 513)), "dm": np.zeros((9, 513)),
            "lam": np.ones((9, 513)), "stft": STFT}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        refine_frequency_offsets(**args)
