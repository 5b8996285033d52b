"""μ-law representation (van den Oord et al. 2016 §2.2; seed 000 Appendix A.2): exact on the
256 levels, agrees with librosa's companding, real speech on the grid, validation errors."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest

from melforge.plugins.representations.mu_law import MuLaw
from melforge.testing import check_registered

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
LEVELS = np.arange(256)


def test_round_trip_is_exact_on_the_256_levels():
    rep = MuLaw()
    features = rep.level_values(LEVELS).astype(np.float32)[:, None]  # (256, 1), c_k = 2k/255 - 1
    audio = rep.to_audio(features, None)
    assert audio.dtype == np.float32 and audio.shape == (256,)
    assert np.array_equal(rep.encode(audio), LEVELS)
    assert np.array_equal(rep.analyze(audio), features)
    assert audio[0] == -1.0 and audio[-1] == 1.0 and np.all(np.diff(audio) > 0)


def test_agrees_with_librosa_companding():
    rep = MuLaw()
    c = rep.level_values(LEVELS)
    # Expansion of the levels' companded values: librosa's unquantised mu_expand.
    np.testing.assert_allclose(rep.decode(LEVELS), librosa.mu_expand(c, mu=255, quantize=False), rtol=0, atol=1e-7)
    # librosa quantises by rounding *up* to the next level and numbers the levels -128..127:
    # just below each level (a quarter step) both give that level.
    below = librosa.mu_expand(c[1:] - 0.5 / 255, mu=255, quantize=False)
    assert np.array_equal(librosa.mu_compress(below, mu=255, quantize=True) + 128, LEVELS[1:])
    assert np.array_equal(rep.encode(below), LEVELS[1:])
    # Anywhere: ours is the nearest level of librosa's companded value, librosa's the next one up.
    x = np.random.default_rng(0).uniform(-1, 1, 20000)
    ours = rep.encode(x)
    theirs = librosa.mu_compress(x, mu=255, quantize=True) + 128
    assert set(np.unique(ours - theirs)) <= {-1, 0}
    companded = librosa.mu_compress(x, mu=255, quantize=False)
    assert np.abs(rep.level_values(ours) - companded).max() <= 1 / 255 + 1e-12


def test_not_equal_to_librosa_mu_compress_except_at_the_ends_and_zero():
    """What the README says: same companding and the same 256 levels (librosa's integer + 128 is
    our ``k``), but librosa's ``quantize=True`` takes the next level up where ours takes the
    nearest, so the two differ by one level for about half of all inputs, and for 127 of the
    256 levels' own float32 audio values (round-off puts librosa's companded value a hair above
    the level); they agree at -1, 0 and +1."""
    rep = MuLaw()
    edges = np.array([-1.0, 0.0, 1.0])
    assert np.array_equal(librosa.mu_compress(edges, mu=255, quantize=True) + 128, rep.encode(edges))
    assert rep.encode(edges).tolist() == [0, 128, 255]
    audio = rep.decode(LEVELS).astype(np.float64)  # each level's own audio value
    assert np.array_equal(rep.encode(audio), LEVELS)
    theirs = librosa.mu_compress(audio, mu=255, quantize=True) + 128
    assert set(np.unique(theirs - LEVELS)) == {0, 1} and int((theirs != LEVELS).sum()) == 127
    x = np.random.default_rng(1).uniform(-1, 1, 100_000)
    differ = np.mean(rep.encode(x) != librosa.mu_compress(x, mu=255, quantize=True) + 128)
    assert 0.45 < differ < 0.55


def test_real_speech_lies_on_the_grid(speech_audio):
    audio, sr = speech_audio
    rep = MuLaw(sr=sr)
    features = rep.analyze(audio)
    assert features.shape == (audio.shape[0], 1) and features.dtype == np.float32
    assert features.min() >= -1 and features.max() <= 1
    levels = np.round((features[:, 0].astype(np.float64) + 1) * 127.5)
    assert np.array_equal(features[:, 0], rep.level_values(levels).astype(np.float32))
    assert len(np.unique(levels)) > 100  # speech uses most of the levels
    decoded = rep.to_audio(features, None)
    snr = 10 * np.log10(np.sum(audio**2) / np.sum((decoded - audio) ** 2))
    assert snr > 25  # 8-bit μ-law on speech: ~35-40 dB
    assert rep.to_audio(features, None, length=100).shape == (100,)
    image = rep.to_image(features)
    assert image.shape == (1 + audio.shape[0] // rep.image_hop_length, 80) and np.isfinite(image).all()


def test_identity_normalizer_geometry_and_config():
    rep = MuLaw(sr=22050)
    normalizer = rep.fit_normalizer([rep.analyze(np.zeros(10, np.float32))])
    assert np.array_equal(normalizer.mean, [0.0]) and np.array_equal(normalizer.std, [1.0])
    assert rep.hop_length == 1 and rep.n_bins == 1 and rep.sr == 22050
    assert MuLaw(**rep.config()).config() == {"sr": 22050, "mu": 255}


def test_validation_errors():
    rep = MuLaw()
    for bad in (np.zeros(0), np.zeros((4, 2)), np.array([0.0, np.nan])):
        with pytest.raises(ValueError, match="mu_law"):
            rep.analyze(bad)
    with pytest.raises(ValueError, match="mu_law features"):
        rep.to_audio(np.zeros((5, 2)), None)
    with pytest.raises(ValueError, match="mu_law features"):
        rep.to_audio(np.array([[np.inf]]), None)
    with pytest.raises(ValueError, match="mu must be"):
        MuLaw(mu=0)
    with pytest.raises(ValueError, match="fit_normalizer"):
        rep.fit_normalizer([])


def test_registered_with_its_config():
    rep = check_registered("representation", "mu_law", CONFIGS / "representation" / "mu_law.yaml",
                           plugin="melforge.plugins.representations.plugin")
    assert rep.config() == {"sr": 16000, "mu": 255}
