"""Inversion metrics: spectral convergence, log-spectral distance, harmonic error (seed 002 eq. 13)."""

from __future__ import annotations

import numpy as np
import pytest

from melforge.core import metrics
from melforge.core.stft import StftParams

SR = 22050


def harmonic_tone(f0: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    """Harmonic tone: 8 partials with 1/h amplitudes, (samples,) float32."""
    t = np.arange(int(seconds * sr)) / sr
    return sum(np.sin(2 * np.pi * h * f0 * t + h) / h for h in range(1, 9)).astype(np.float32) * 0.2


def test_spectral_convergence_values():
    s = np.ones((4, 5))
    assert metrics.spectral_convergence(s, s) == 0.0
    assert metrics.spectral_convergence_db(s, s) == float("-inf")
    assert metrics.spectral_convergence(s, 0.9 * s) == pytest.approx(0.1)
    assert metrics.spectral_convergence_db(s, 0.9 * s) == pytest.approx(-20.0)
    assert metrics.spectral_convergence(s, np.ones((5, 5))) == 0.0  # one extra frame is trimmed


def test_log_spectral_distance_values():
    s = np.random.default_rng(0).random((6, 9)) + 0.1
    assert metrics.log_spectral_distance(s, s) == 0.0
    # a uniform gain of 2 in magnitude is 20 log10(2) ≈ 6.02 dB in every bin
    assert metrics.log_spectral_distance(s, 2 * s, floor=0.0) == pytest.approx(20 * np.log10(2))


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="equal bins"):
        metrics.spectral_convergence(np.ones((4, 5)), np.ones((4, 6)))
    with pytest.raises(ValueError, match="frame counts"):
        metrics.log_spectral_distance(np.ones((4, 5)), np.ones((8, 5)))
    with pytest.raises(ValueError, match="all zero"):
        metrics.spectral_convergence(np.zeros((4, 5)), np.ones((4, 5)))


def test_stft_magnitude_shape_and_empty_audio():
    p = StftParams(SR, 1024, 256, 1024)
    assert metrics.stft_magnitude(np.zeros(2560, np.float32), p).shape == (11, 513)
    with pytest.raises(ValueError, match="non-empty"):
        metrics.stft_magnitude(np.zeros(0, np.float32), p)


def test_harmonic_error_of_itself_is_zero():
    x = harmonic_tone(220.0)
    h = metrics.harmonic_error(x, x, SR, [220.0])
    assert h.mean == 0.0 and h.max == 0.0
    assert h.per_partial.shape[:2] == (1, 5)


@pytest.mark.parametrize("f0", [110.0, 261.63, 440.0])
def test_harmonic_error_of_a_semitone_shift_is_one(f0):
    x = harmonic_tone(f0)
    y = harmonic_tone(f0 * 2 ** (1 / 12))
    h = metrics.harmonic_error(x, y, SR, [f0])
    assert h.mean == pytest.approx(1.0, abs=0.05)
    assert h.max < 1.2


def test_harmonic_error_small_detuning_and_bad_notes():
    x = harmonic_tone(330.0)
    y = harmonic_tone(330.0 * 2 ** (0.1 / 12))  # 10 cents
    assert metrics.harmonic_error(x, y, SR, [330.0]).mean == pytest.approx(0.1, abs=0.02)
    with pytest.raises(ValueError, match="positive note fundamentals"):
        metrics.harmonic_error(x, y, SR, [])
    with pytest.raises(ValueError, match="positive note fundamentals"):
        metrics.harmonic_error(x, y, SR, [-5.0])
