"""Auger–Flandrin reassignment operators against librosa.reassigned_spectrogram on real music."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from melforge.core.stft import StftParams
from melforge.core.dsp.reassignment import reassign, reassignment_windows

STFT = StftParams(22050, 1024, 256, 1024)


@pytest.fixture(scope="module")
def piano() -> np.ndarray:
    """3 s of a Bach chorale rendered on a piano (melforge's own dataset), ``(samples,)``."""
    from melforge.datasets.piano import BachChoralesPiano

    return next(BachChoralesPiano(chorales=1, seconds=3.0).clips(STFT.sr)).audio


@pytest.mark.filterwarnings("ignore:'where' used without 'out'")  # inside librosa
@pytest.mark.parametrize(
    "stft, floor_db, freq_atol",
    [(STFT, -80.0, 1e-4), (StftParams(22050, 1024, 128, 800), -40.0, 5e-3)],
    ids=["1024/256", "1024/128/win800"],
)
def test_offsets_match_librosa_reassigned_spectrogram(piano, stft, floor_db, freq_atol):
    """Reassigned frequencies and times agree with librosa's on every bin above ``floor_db``.

    Tolerances: librosa differentiates the sampled window by a cyclic centred difference, ours
    is the analytic derivative. With ``win_length == n_fft`` the two differ by the factor
    ``sin(2π/L)/(2π/L)`` (6e-6 relative at L = 1024): frequencies agree to 1e-4 bins + 2e-5
    relative down to −80 dB. With a zero-padded window (800 in 1024) the difference quotient
    also differs at the window's ends, a broadband error that grows as the bin's power falls
    (measured: 2.2e-3 bins at −40 dB, 2e-2 at −60 dB): 5e-3 bins above −40 dB. librosa weights
    time with ``k − n_fft/2 + ½`` (ours: ``k − n_fft/2``, samples from the frame centre), so its
    times are ours plus half a sample, after which they agree to 1e-6 frames.
    """
    r = reassign(piano, stft)
    freqs, times, mags = librosa.reassigned_spectrogram(
        piano.astype(np.float64), sr=stft.sr, n_fft=stft.n_fft, hop_length=stft.hop_length,
        win_length=stft.win_length, center=True, pad_mode="constant", ref_power=0.0,
        fill_nan=False, clip=False,
    )  # fmt: skip
    freqs, times, mags = freqs.T, times.T, mags.T  # (frames, bins)
    np.testing.assert_allclose(np.abs(r.spectrum), mags, rtol=0, atol=1e-9)
    power = mags**2
    live = power > 10 ** (floor_db / 10) * power.max()
    assert live.sum() > 10_000
    m = np.arange(stft.n_bins)[None, :]
    n = np.arange(r.dm.shape[0])[:, None]
    lib_dm = freqs * stft.n_fft / stft.sr - m  # bins
    lib_dn = (times - 0.5 / stft.sr) * stft.sr / stft.hop_length - n  # frames, half-sample shift removed
    err_m = np.abs(r.dm - lib_dm)[live]
    assert np.all(err_m <= freq_atol + 2e-5 * np.abs(lib_dm[live])), err_m.max()
    assert np.abs(r.dn - lib_dn)[live].max() <= 1e-6
    # the offsets are not trivially small: real reassignment happens on this audio
    assert np.percentile(np.abs(r.dm[live]), 90) > 1.0 and np.percentile(np.abs(r.dn[live]), 90) > 0.3


def test_windows_are_hann_its_derivative_and_time_weighted():
    stft = StftParams(16000, 64, 16, 48)
    h, dh, th = reassignment_windows(stft)
    ref = librosa.util.pad_center(librosa.filters.get_window("hann", 48, fftbins=True), size=64)
    np.testing.assert_allclose(h, ref, atol=1e-15)
    # d/dk of ½ − ½ cos(2π (k − 8) / 48) inside the window, zero in the padding
    np.testing.assert_allclose(dh[8:56], (np.pi / 48) * np.sin(2 * np.pi * np.arange(48) / 48), atol=1e-15)
    assert not dh[:8].any() and not dh[56:].any()
    # and a centred difference of the samples agrees to O(1/L²) inside the window
    np.testing.assert_allclose(dh[9:55], (h[10:56] - h[8:54]) / 2, atol=3e-3 * np.abs(dh).max())
    np.testing.assert_allclose(th, (np.arange(64) - 32) * h, atol=0)


def test_silence_gets_zero_offsets_and_bad_audio_is_refused():
    x = np.zeros(4000)
    x[2000] = 1.0
    r = reassign(x, STFT)
    assert np.all(r.dm[0] == 0) and np.all(r.dn[0] == 0)  # frame 0 does not reach sample 2000
    assert np.all(np.isfinite(r.dm)) and np.all(np.isfinite(r.dn))
    with pytest.raises(ValueError, match="audio"):
        reassign(np.array([0.0, np.nan, 1.0]), STFT)
