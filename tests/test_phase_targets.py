"""Seed 002's targets: bin offsets (eq. 6) with §3.1's clipping, and the classification λ (eq. 12)."""

from __future__ import annotations

import numpy as np
import pytest

from melforge.core.stft import StftParams
from melforge.core.dsp.phase_targets import (
    MAX_FREQ_OFFSET,
    classification,
    max_time_offset,
    phase_targets,
)
from melforge.core.dsp.reassignment import reassign

STFT = StftParams(22050, 1024, 256, 1024)
SR = STFT.sr


def _sine(bins: float, seconds: float = 1.0) -> np.ndarray:
    """A sinusoid at ``bins`` FFT bins (``bins · sr / n_fft`` Hz)."""
    t = np.arange(int(seconds * SR)) / SR
    return np.sin(2 * np.pi * bins * SR / STFT.n_fft * t)


def test_frequency_offset_of_a_sinusoid_between_bins():
    """A sinusoid at bin 100.3: every bin of its main lobe reassigns to 100.3 (Δm = 100.3 − m),
    Δn = 0 (stationary), and eq. 6's instantaneous frequency is 2π f / sr."""
    tg = phase_targets(_sine(100.3), STFT)
    inner = slice(5, -5)  # frames away from the clip's ends
    for m in range(98, 103):
        np.testing.assert_allclose(tg.dm[inner, m], 100.3 - m, atol=1e-3)
        np.testing.assert_allclose(tg.dn[inner, m], 0.0, atol=1e-3)
    inst = reassign(_sine(100.3), STFT).instantaneous_frequency(STFT)[inner, 100]
    np.testing.assert_allclose(inst, 2 * np.pi * 100.3 / STFT.n_fft, rtol=1e-6)


def test_time_offset_of_an_impulse():
    """An impulse at sample t0: every frame that sees it reassigns to t0 / R (Δn = t0/R − n),
    on every bin; eq. 6's group delay is −2π R Δn / N per bin."""
    stft = StftParams(SR, 1024, 128, 1024)
    x = np.zeros(SR)
    t0 = 10_050
    x[t0] = 1.0
    r = reassign(x, stft)
    frames = np.arange(75, 83)  # centres within ±512 samples of t0 = 78.52 hops
    expect = t0 / stft.hop_length - frames
    np.testing.assert_allclose(r.dn[frames][:, 5:500], np.broadcast_to(expect[:, None], (8, 495)), atol=1e-9)
    np.testing.assert_allclose(r.dm[frames][:, 5:500], 0.0, atol=1e-9)
    gd = r.group_delay(stft)[frames, 100]
    np.testing.assert_allclose(gd, -2 * np.pi * stft.hop_length * expect / stft.n_fft, rtol=1e-9)


def test_lambda_is_one_on_a_sinusoid_and_zero_on_an_impulse():
    tg = phase_targets(_sine(100.3), STFT)
    assert tg.lam[5:-5, 98:103].min() > 0.99
    stft = StftParams(SR, 1024, 128, 1024)
    x = np.zeros(SR)
    x[10_050] = 1.0
    tg = phase_targets(x, stft)
    # frames 76..81: the impulse is in their windows and in both time neighbours' windows
    assert tg.lam[76:82, 5:500].max() < 0.01


def test_offsets_are_clipped_as_section_3_1_says():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR // 2)  # white noise: reassignment scatters far
    raw = reassign(x, STFT)
    tg = phase_targets(x, STFT)
    limit = max_time_offset(STFT)
    assert limit == 2.0  # N / (2R) = 1024 / 512
    assert np.abs(raw.dm).max() > MAX_FREQ_OFFSET and np.abs(raw.dn).max() > limit
    assert np.abs(tg.dm).max() == MAX_FREQ_OFFSET and np.abs(tg.dn).max() == limit
    np.testing.assert_array_equal(tg.dm, np.clip(raw.dm, -4, 4))
    np.testing.assert_array_equal(tg.dn, np.clip(raw.dn, -limit, limit))
    np.testing.assert_allclose(tg.magnitude, np.abs(raw.spectrum))
    assert tg.lam.shape == tg.dm.shape and 0 <= tg.lam.min() and tg.lam.max() <= 1


def test_classification_by_hand():
    """Eq. 12 with centred differences on a 3 × 3 example (one-sided at the edges)."""
    dm = np.array([[0.0, 0.5, 2.0], [0.0, 0.0, 0.0], [1.0, 0.0, -1.0]])
    dn = np.array([[0.0, 0.0, 0.0], [0.5, -1.0, 0.0], [0.0, 0.0, 0.0]])
    lam = classification(dm, dn)
    # bin (1, 1): dṁ/dm = 1 + (0 − 0)/2 = 1, dṅ/dn = 1 + (0 − 0)/2 = 1 → e^{−1}
    assert lam[1, 1] == pytest.approx(np.exp(-1))
    # bin (0, 1): dṁ/dm = 1 + (2 − 0)/2 = 2; dṅ/dn = 1 + (−1 − 0)/1 = 0 → ratio ∞ → 0
    assert lam[0, 1] == 0.0
    # bin (2, 1): dṁ/dm = 1 + (−1 − 1)/2 = 0 → λ = 1 (dṅ/dn = 1 + (0 − (−1)) = 2)
    assert lam[2, 1] == 1.0
    # bin (0, 0): dṁ/dm = 1 + 0.5 = 1.5, dṅ/dn = 1 + 0.5 = 1.5 → e^{−1}
    assert lam[0, 0] == pytest.approx(np.exp(-1))
    # bin (2, 2): dṁ/dm = 1 + (−1 − 0) = 0, dṅ/dn = 1 + (0 − 0) = 1 → 1
    assert lam[2, 2] == 1.0
    # bin (1, 0): dṁ/dm = 1 + (0 − 0) = 1, dṅ/dn = 1 + (0 − 0)/2 = 1 → e^{−1}
    assert lam[1, 0] == pytest.approx(np.exp(-1))
    with pytest.raises(ValueError, match="classification"):
        classification(np.zeros((1, 4)), np.zeros((1, 4)))
