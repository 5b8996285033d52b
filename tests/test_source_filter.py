"""Source-filter vocoders (issue 18): pyin labels and the cents / V-UV figures on known values,
DDSP's oscillator, filtered noise, reverb and spectral loss, hn-NSF's source and filter blocks,
and tiny DDSP / NSF runs through the one loop, cut and resumed exactly, then inverting through
``melforge-invert``."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

SR = 16000


# --- F0 labels and figures -----------------------------------------------------------------------

@pytest.mark.parametrize("f0", [110.0, 50.0 * 2 ** (256 / 120)])
def test_pyin_labels_of_a_sawtooth_are_within_half_a_pitch_bin(f0):
    from melforge.plugins.source_filter.pitch import cents, pyin_labels

    t = np.arange(SR) / SR
    saw = 0.5 * (2 * ((f0 * t) % 1) - 1)
    label_f0, voiced = pyin_labels(saw, SR, 256, 1024)
    assert label_f0.shape == voiced.shape == (1 + SR // 256,)
    inner = slice(4, -4)  # away from the zero-padded edges
    assert voiced[inner].all()
    # pyin's candidates are 10 cents apart from fmin = 50 Hz: 110 Hz lies 5 cents off the grid
    # (1200 · log2(110 / 50) = 1365.0), 50 · 2^(256/120) on it
    err = np.abs(cents(label_f0[inner], f0))
    assert np.median(err) <= (5.01 if f0 == 110.0 else 0.01) and err.max() <= 10.01


def test_pyin_marks_noise_unvoiced_and_fills_its_f0():
    from melforge.plugins.source_filter.pitch import fill_unvoiced, pyin_labels

    noise = np.random.default_rng(0).normal(0, 0.1, SR // 2)
    f0, voiced = pyin_labels(noise, SR, 256, 1024)
    assert voiced.mean() < 0.2 and np.isfinite(f0).all() and (f0 > 0).all()
    # interpolation is log-linear between voiced frames, held at the edges
    filled = fill_unvoiced(np.array([np.nan, 100.0, np.nan, 400.0, np.nan]), np.array([0, 1, 0, 1, 0], bool), 150.0)
    np.testing.assert_allclose(filled, [100, 100, 200, 400, 400], rtol=1e-6)
    assert (fill_unvoiced(np.full(3, np.nan), np.zeros(3, bool), 150.0) == 150.0).all()
    with pytest.raises(ValueError, match="frame_length 256 samples is under two periods of fmin 50"):
        pyin_labels(noise, SR, 256, 256)


def test_cents_figures_of_a_known_offset_are_exact():
    from melforge.plugins.source_filter.pitch import f0_figures

    label = np.array([[100.0, 200.0, 300.0, 150.0]])
    voiced = np.array([[1.0, 1.0, 1.0, 0.0]])
    est = label * 2 ** (25 / 1200)  # 25 cents sharp everywhere
    est[0, 2] = 300.0 * 2 ** (-100 / 1200)  # one frame a semitone flat
    prob = np.array([[0.9, 0.2, 0.8, 0.1]])  # frame 1 called unvoiced: 3 of 4 decisions right
    figures = f0_figures(est, prob, label, voiced)
    assert figures["f0_cents"] == pytest.approx(25.0, abs=1e-9)
    assert figures["f0_cents_mean"] == pytest.approx(50.0, abs=1e-9)
    assert figures["vuv_accuracy"] == 0.75


def test_the_estimator_losses_and_f0_range():
    from melforge.plugins.source_filter.estimator import F0Estimator

    est = F0Estimator(12, channels=8, layers=2)
    log_f0, logit = est(torch.randn(3, 7, 12))
    assert log_f0.shape == logit.shape == (3, 7)
    assert float(est.f0_hz(torch.tensor(100.0))) == pytest.approx(600.0) and float(est.f0_hz(torch.tensor(-5.0))) == pytest.approx(50.0)
    label = torch.tensor([[100.0, 200.0]])
    centre = 0.5 * (math.log(50.0) + math.log(600.0))
    y = torch.tensor([[[math.log(100.0 * math.e) - centre, 1.0 - centre]], [[0.0, 0.0]]]).transpose(0, 1)  # (1, 2, 2)
    terms = est.losses(y, label, torch.tensor([[1.0, 0.0]]))
    assert float(terms["f0_l1"]) == pytest.approx(1.0, abs=1e-6)  # one nat off on the voiced frame; the unvoiced one ignored
    assert float(terms["vuv_bce"]) == pytest.approx(math.log(2))
    assert float(est.losses(y, label, torch.zeros(1, 2))["f0_l1"]) == 0.0  # no voiced frame: no F0 term
    with pytest.raises(ValueError, match="odd kernel"):
        F0Estimator(12, kernel=4)


def test_the_pitch_bin_head_decodes_to_the_cents_of_its_distribution_and_scores_the_label():
    from melforge.plugins.source_filter.pitch_heads import PitchBinHead

    head = PitchBinHead(50.0, 800.0, bin_cents=20.0)
    assert head.outputs == 1 + 4 * 60 + 1  # four octaves of 20-cent bins, both ends included
    # a Gaussian over the bins centred between two of them decodes to its centre (CREPE's local mean;
    # within 4 bins of an end of the range the window is one-sided, so the mean is pulled inwards)
    for f0 in (61.7, 200.0, 433.3, 700.0):
        c = head.cents(torch.tensor(f0))
        logits = -0.5 * ((head.centres - c) / 25.0) ** 2
        y = torch.cat([torch.tensor([3.0]), logits])[None, :, None]  # (1, 1 + bins, 1)
        log_f0, vuv = head.decode(y)
        assert float(torch.exp(log_f0)) == pytest.approx(f0, rel=2 ** (1.0 / 1200) - 1)  # within a cent
        assert float(vuv) == 3.0
    # the cross-entropy is lowest when the logits are the label's own Gaussian, and only voiced frames count
    label = torch.tensor([[220.0, 330.0]])
    voiced = torch.tensor([[True, False]])
    good = torch.cat([torch.zeros(1), -0.5 * ((head.centres - head.cents(torch.tensor(220.0))) / 25.0) ** 2])
    off = torch.cat([torch.zeros(1), -0.5 * ((head.centres - head.cents(torch.tensor(233.1))) / 25.0) ** 2])
    y_good, y_off = (torch.stack([v, torch.zeros_like(v)], dim=1)[None] for v in (good, off))  # (1, 1 + bins, 2)
    assert head.f0_loss(y_good, label, voiced).shape == (1,)
    assert float(head.f0_loss(y_good, label, voiced)) < float(head.f0_loss(y_off, label, voiced))
    with pytest.raises(ValueError, match="estimator_bin_cents"):
        PitchBinHead(50.0, 800.0, bin_cents=0.0)


def test_an_estimator_with_pitch_bins_learns_a_pitch_and_old_checkpoints_keep_the_regression_head():
    from melforge.plugins.source_filter.setup import SourceFilterSetup

    setup = SourceFilterSetup.from_config({"generator": "ddsp", "hidden": 8, "mlp_layers": 1, "harmonics": 4,
                                           "estimator_channels": 16, "estimator_layers": 2, "estimator_head": "bins"})
    est = setup.build(12, SR, 256).estimator
    assert est.head.loss_name == "f0_ce" and est.out.out_channels == est.head.outputs
    # a config without the key (every checkpoint written before the key existed) builds the regression head
    old = SourceFilterSetup.from_config({"generator": "ddsp", "hidden": 8, "mlp_layers": 1, "harmonics": 4}).build(12, SR, 256)
    assert old.estimator.head.loss_name == "f0_l1" and old.estimator.out.out_channels == 2
    with pytest.raises(ValueError, match="estimator_head"):
        SourceFilterSetup.from_config({"estimator_head": "crepe"})
    # it fits two pitches told apart by which mel band is loudest, to within a few cents
    torch.manual_seed(0)
    mels = torch.full((2, 5, 12), -5.0)
    mels[0, :, 3], mels[1, :, 7] = 0.0, 0.0
    f0 = torch.tensor([[110.0] * 5, [347.0] * 5])
    voiced = torch.ones(2, 5)
    opt = torch.optim.Adam(est.parameters(), 1e-2)
    for _ in range(300):
        terms = est.losses(est.outputs(mels), f0, voiced)
        opt.zero_grad()
        (terms["f0_ce"] + terms["vuv_bce"]).backward()
        opt.step()
    with torch.no_grad():
        log_f0, logit = est(mels)
    err = 1200 * torch.log2(est.f0_hz(log_f0) / f0).abs()
    assert float(err.max()) < 10.0 and bool((logit > 0).all())


def test_the_estimators_front_end_reads_levels_relative_to_each_frames_loudest_band():
    from melforge.plugins.source_filter.estimator import F0Estimator

    torch.manual_seed(0)
    est = F0Estimator(12, channels=8, layers=2, front_channels=4, front_layers=2)
    log_mel = torch.randn(2, 9, 12)
    log_f0, logit = est(log_mel)
    assert log_f0.shape == logit.shape == (2, 9)
    # a gain (a constant in log-mel, per frame) changes nothing; a change of spectral shape does
    gain = torch.linspace(-3.0, 2.0, 9)[None, :, None]
    louder_f0, louder_logit = est(log_mel + gain)
    torch.testing.assert_close(louder_f0, log_f0, rtol=0, atol=1e-5)
    torch.testing.assert_close(louder_logit, logit, rtol=0, atol=1e-5)
    assert not torch.allclose(est(log_mel.flip(-1))[0], log_f0, atol=1e-3)
    # the front end is part of the stored model: its weights are in the state dict
    assert any(k.startswith("front.") for k in est.state_dict())
    assert not any(k.startswith("front.") for k in F0Estimator(12, channels=8, layers=2).state_dict())
    with pytest.raises(ValueError, match="estimator_front_channels"):
        F0Estimator(12, front_channels=-1)
    with pytest.raises(ValueError, match="odd"):
        F0Estimator(12, front_channels=4, front_kernel=(6, 3))


# --- DDSP ----------------------------------------------------------------------------------------

def test_one_harmonic_at_440_hz_is_a_unit_sinusoid_at_440_hz():
    from melforge.plugins.source_filter.oscillator import harmonic_oscillator

    x = harmonic_oscillator(torch.full((1, SR), 440.0), torch.ones(1, SR, 1), SR)[0].numpy()
    spectrum = np.abs(np.fft.rfft(x)) / (SR / 2)
    assert spectrum.argmax() == 440 and spectrum[440] == pytest.approx(1.0, abs=1e-4)
    # phase = cumulative sum of the instantaneous frequency: sin(2π · 440 · (n + 1) / sr)
    np.testing.assert_allclose(x, np.sin(2 * np.pi * 440 * (np.arange(SR) + 1) / SR), atol=1e-4)


def test_harmonics_at_or_above_nyquist_are_silent():
    from melforge.plugins.source_filter.oscillator import harmonic_oscillator, nyquist_mask

    amps = torch.ones(1, SR, 4)
    x = harmonic_oscillator(torch.full((1, SR), 3000.0), amps, SR)[0].numpy()  # 3, 6 kHz pass; 9, 12 kHz silenced
    spectrum = np.abs(np.fft.rfft(x)) / (SR / 2)
    assert spectrum[3000] == pytest.approx(1.0, abs=1e-3) and spectrum[6000] == pytest.approx(1.0, abs=1e-3)
    assert np.sort(spectrum)[-3] < 1e-3  # nothing else: 9 and 12 kHz would alias to 7 and 4 kHz
    assert nyquist_mask(torch.tensor([3000.0, 5000.0]), 4, SR).tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]


def test_frame_controls_are_interpolated_linearly_between_frame_centres():
    from melforge.plugins.source_filter.oscillator import frames_to_samples

    y = frames_to_samples(torch.tensor([[0.0, 1.0, 3.0]]), 4)
    assert y.tolist() == [[0, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3, 3, 3]]


def test_the_filtered_noise_fir_applies_a_known_response():
    from melforge.plugins.source_filter.filtered_noise import filtered_noise, row_noise

    noise = row_noise(torch.tensor([1, 2]), 64 * 256)
    assert noise.shape == (2, 64 * 256) and -1 <= float(noise.min()) and float(noise.max()) < 1
    assert torch.equal(noise[1], row_noise(torch.tensor([2]), 64 * 256)[0])
    # a flat gain: the windowed impulse response is g · δ at its delay, which is compensated
    flat = filtered_noise(torch.full((2, 64, 65), 0.5), noise, 256)
    assert torch.allclose(flat, 0.5 * noise, atol=1e-6)
    # a low-pass at 4 kHz (bands 0…32 of 64 over 0…8 kHz): the power above 5 kHz falls by 30 dB
    gains = (torch.arange(65) <= 32).float().expand(2, 64, 65)
    y = filtered_noise(gains, noise, 256)
    p_in, p_out = (np.abs(np.fft.rfft(s[0].numpy())) ** 2 for s in (noise, y))
    freqs = np.fft.rfftfreq(noise.shape[1], 1 / SR)
    kept = p_out[freqs < 3500].sum() / p_in[freqs < 3500].sum()
    cut = p_out[freqs > 5000].sum() / p_in[freqs > 5000].sum()
    assert kept == pytest.approx(1.0, abs=0.05) and cut < 1e-3


def test_the_learned_reverb_adds_the_convolution_to_the_dry_signal():
    from melforge.plugins.source_filter.reverb import LearnedReverb

    reverb = LearnedReverb(4)
    with torch.no_grad():
        reverb.ir.copy_(torch.tensor([9.0, 0.5, 0.0, 0.25]))  # the first tap is held at 0
    x = torch.zeros(1, 8)
    x[0, 0] = 1.0
    assert torch.allclose(reverb(x), torch.tensor([[1.0, 0.5, 0.0, 0.25, 0, 0, 0, 0]]), atol=1e-6)


def test_the_spectral_losses_are_zero_on_equal_audio_and_positive_otherwise():
    from melforge.plugins.source_filter.spectral_loss import DDSP_FFT_SIZES, MultiScaleSpectralLoss, NsfSpectralLoss

    assert DDSP_FFT_SIZES == (2048, 1024, 512, 256, 128, 64)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4096, generator=g)
    for loss in (MultiScaleSpectralLoss(), NsfSpectralLoss()):
        assert float(loss(x, x)) == 0.0
        near, far = float(loss(x + 0.01 * torch.randn(2, 4096, generator=g), x)), float(loss(torch.randn(2, 4096, generator=g), x))
        assert 0 < near < far
    # DDSP's: twice the amplitude gives mean |S| at every scale plus log 2, six times
    ms = MultiScaleSpectralLoss(eps=0.0)
    expected = sum(float(ms.magnitude(x, n).mean()) + math.log(2) for n in DDSP_FFT_SIZES)
    assert float(ms(2 * x, x)) == pytest.approx(expected, rel=1e-5)
    # NSF's: twice the amplitude is 4× the power, ½ (log 4)² per resolution (η negligible here)
    assert float(NsfSpectralLoss(eta=0.0)(2 * x, x)) == pytest.approx(3 * 0.5 * math.log(4) ** 2, rel=1e-4)


def test_the_ddsp_vocoder_is_silent_but_for_noise_when_unvoiced():
    from melforge.plugins.source_filter.ddsp import DdspVocoder

    torch.manual_seed(0)
    v = DdspVocoder(12, SR, 256, hidden=16, mlp_layers=1, harmonics=8, noise_bands=17, reverb_taps=32)
    mel, f0 = torch.randn(2, 6, 12), torch.full((2, 6), 150.0)
    seeds = torch.tensor([4, 5])
    voiced = v(mel, f0, torch.ones(2, 6), seeds).detach()
    assert voiced.shape == (2, 6 * 256) and torch.isfinite(voiced).all()
    amplitude, dist, noise = v.controls(mel, f0)
    assert torch.allclose(dist.sum(-1), torch.ones(2, 6)) and (noise > 0).all() and (amplitude > 0).all()
    # unvoiced: the harmonic part is gated off, so the output is the noise alone, much quieter
    unvoiced = v(mel, f0, torch.zeros(2, 6), seeds).detach()
    assert float(unvoiced.pow(2).mean()) < 0.01 * float(voiced.pow(2).mean())


# --- hn-NSF -------------------------------------------------------------------------------------

def test_the_nsf_source_is_a_sinusoid_when_voiced_and_noise_of_alpha_over_3_when_not():
    from melforge.plugins.source_filter.nsf import ALPHA, SIGMA, row_randoms, sine_source

    n = SR
    noise, _, phases = row_randoms(torch.tensor([7]), n, 2, "cpu")
    voiced = torch.zeros(1, n)
    voiced[:, : n // 2] = 1
    e = sine_source(torch.full((1, n), 200.0), voiced, SR, 2, noise, phases)  # (1, samples, 2)
    first = e[0, : n // 2, 0].numpy()
    spectrum = np.abs(np.fft.rfft(first)) / (n / 4)
    assert spectrum.argmax() == 100  # 200 Hz in 2 Hz bins
    assert spectrum[100] == pytest.approx(ALPHA, rel=0.01)
    second = np.abs(np.fft.rfft(e[0, : n // 2, 1].numpy())).argmax()
    assert second == 200  # the harmonic at 400 Hz
    residual = first - ALPHA * np.sin(2 * np.pi * (200 * (np.arange(n // 2) + 1) / SR + float(phases[0, 0])))
    assert residual.std() == pytest.approx(SIGMA, rel=0.05)
    assert e[0, n // 2 :, 0].std() == pytest.approx(ALPHA / 3, rel=0.05)
    assert torch.equal(e[0, n // 2 :, 0], e[0, n // 2 :, 1])  # unvoiced: the same noise, no sine


def test_an_nsf_filter_block_is_causal_and_residual():
    from melforge.plugins.source_filter.nsf import FilterBlock

    torch.manual_seed(0)
    block = FilterBlock(8, 4, 5)
    x, cond = torch.randn(1, 200), torch.randn(1, 5, 200)
    y = block(x, cond)
    x2 = x.clone()
    x2[0, 100] += 1.0
    changed = (block(x2, cond) - y).abs()[0] > 0
    assert not changed[:100].any() and changed[100]
    with torch.no_grad():
        block.out[2].weight.zero_()
        block.out[2].bias.zero_()
    assert torch.equal(block(x, cond), x)  # o = i + a, a = 0


def test_the_nsf_vocoder_shapes_and_its_size_checks():
    from melforge.plugins.source_filter.nsf import NsfVocoder

    v = NsfVocoder(12, SR, 256, channels=8, blocks=2, layers=3)
    audio = v(torch.randn(2, 5, 12), torch.full((2, 5), 120.0), torch.tensor([[1.0, 1, 0, 0, 1]] * 2), torch.tensor([1, 2]))
    assert audio.shape == (2, 5 * 256) and torch.isfinite(audio).all()
    with pytest.raises(ValueError, match="inverter.voiced_cutoff=9000"):
        NsfVocoder(12, SR, 256, voiced_cutoff=9000.0)
    with pytest.raises(ValueError, match="inverter.blocks=0"):
        NsfVocoder(12, SR, 256, blocks=0)


def _nsf_hifigan(n_mels=12, channels=16):
    from melforge.plugins.gan_vocoders.hifigan import VARIANTS
    from melforge.plugins.source_filter.nsf_hifigan import NsfHifiGanVocoder

    spec = dataclasses.replace(VARIANTS["v3"], initial_channels=channels)
    return spec, NsfHifiGanVocoder(n_mels, SR, 256, spec)


def test_the_source_downsamplers_bring_the_source_to_every_stage_rate():
    from melforge.plugins.source_filter.nsf_hifigan import SourceDownsampler

    for ratio in (1, 2, 3, 4, 5, 32):
        out = SourceDownsampler(3, ratio)(torch.randn(2, 1, 7 * ratio))
        assert out.shape == (2, 3, 7), ratio
    with pytest.raises(ValueError, match="ratio ≥ 1"):
        SourceDownsampler(3, 0)


def test_nsf_hifigan_without_its_source_is_hifigans_generator_exactly():
    """Zero every source injection: the output is HiFi-GAN's generator with the same weights."""
    from melforge.plugins.gan_vocoders.hifigan import HifiGanGenerator

    torch.manual_seed(0)
    spec, vocoder = _nsf_hifigan()
    reference = HifiGanGenerator(spec, 12)
    vocoder.trunk.load_state_dict(reference.trunk.state_dict())
    vocoder.conv_post.load_state_dict(reference.conv_post.state_dict())
    mel, f0, voiced, seeds = torch.randn(2, 5, 12), torch.full((2, 5), 140.0), torch.ones(2, 5), torch.tensor([3, 4])
    with torch.no_grad():
        driven = vocoder(mel, f0, voiced, seeds)
        for down in vocoder.source_downsamplers:
            down.conv.weight.zero_()
            down.conv.bias.zero_()
        assert driven.shape == (2, 5 * 256) and float(driven.abs().max()) <= 1
        assert not torch.allclose(driven, vocoder(mel, f0, voiced, seeds))  # the source did change the audio
        torch.testing.assert_close(vocoder(mel, f0, voiced, seeds), reference(mel), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"inverter.upsample_rates \[8, 8, 4\] multiply to 256.*hop_length is 200"):
        type(vocoder)(12, SR, 200, spec)


def test_nsf_hifigans_source_oscillates_at_f0_where_voiced_and_is_noise_where_not():
    _, vocoder = _nsf_hifigan()
    with torch.no_grad():
        vocoder.merge.weight.zero_()
        vocoder.merge.weight[0, 0] = 1.0  # the fundamental's sine alone
        vocoder.merge.bias.zero_()
        frames, f0 = 32, 187.5  # 48 cycles in 4096 samples: an exact FFT bin
        voiced = torch.cat([torch.ones(1, frames // 2), torch.zeros(1, frames // 2)], dim=1)
        e = vocoder.source(torch.full((1, frames), f0), voiced, torch.tensor([0]))[0]
    assert e.shape == (frames * 256,)
    half = frames * 256 // 2
    spectrum = torch.fft.rfft(e[: half - 256]).abs()  # voiced, clear of the crossfade
    assert abs(int(spectrum.argmax()) * SR / (half - 256) - f0) < SR / (half - 256)
    assert float(spectrum.max()) > 20 * float(spectrum.median())
    unvoiced = e[half + 256 :]
    assert 0.01 < float(unvoiced.std()) < 0.1  # hn-NSF's unvoiced noise, deviation α / 3 ≈ 0.033 through tanh


# --- training through the one loop, the trained inverter -------------------------------------------

TINY = ("inverter.estimator_channels=8", "inverter.estimator_layers=2", "data.crop_frames=8", "data.valid_crops=2",
        "data.valid_fraction=0.3", "train.batch_size=2", "train.log_every=1", "train.valid_every=2",
        "train.checkpoint_every=2", "threads=1", "dataset=audio_folder")
SIZES = {"ddsp_tiny": ("inverter.hidden=16", "inverter.mlp_layers=1", "inverter.harmonics=16", "inverter.reverb_taps=64"),
         "nsf_tiny": ("inverter.channels=4", "inverter.blocks=1", "inverter.layers=3"),
         # steps 3 and 4 are adversarial: the cut at step 2 resumes into the discriminators' start
         "nsf_hifigan_tiny": ("inverter.initial_channels=16", "inverter.discriminator_width=0.0625",
                              "inverter.adversarial_start=2")}


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory, speech_clips):
    root = tmp_path_factory.mktemp("speech")
    for k, clip in enumerate([c for c in speech_clips if len(c.audio) > c.sr][:6]):
        sf.write(root / f"{k}.wav", clip.audio[: 2 * clip.sr], clip.sr)
    return root


def _cfg(folder, experiment, *extra):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        c = compose(config_name="train", overrides=[f"experiment={experiment}", f"dataset.root={folder}", *TINY,
                                                    *SIZES[experiment], *extra])
    return OmegaConf.to_container(c, resolve=True)


@pytest.fixture(scope="module", params=["ddsp_tiny", "nsf_tiny", "nsf_hifigan_tiny"])
def trained(request, tmp_path_factory, speech_folder):
    """A twin for 4 steps straight, and cut at step 2 and resumed; and the inverter's name."""
    from melforge.core.learners import train

    experiment = request.param
    base = tmp_path_factory.mktemp("runs")
    straight = train(_cfg(speech_folder, experiment, "train.max_steps=4"), base / "straight")
    train(_cfg(speech_folder, experiment, "train.max_steps=2"), base / "cut")
    resumed = train(_cfg(speech_folder, experiment, "train.max_steps=4"), base / "cut")
    return base, straight, resumed, experiment.removesuffix("_tiny")


def test_a_tiny_run_reports_the_estimators_figures_and_resumes_bit_identically(trained):
    from melforge.core.checkpoint import load_checkpoint

    base, straight, resumed, _ = trained
    assert straight["steps"] == resumed["steps"] == 4 and straight["trains"] == "inverter"
    metrics = json.loads((base / "straight/metrics.json").read_text())
    for key in ("valid_mel_l1", "valid_spectral", "valid_spectral_labels", "valid_f0_cents", "valid_f0_cents_mean"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0, key
    assert 0 <= metrics["valid_vuv_accuracy"] <= 1
    a, b = load_checkpoint(base / "straight/checkpoints/last.pt"), load_checkpoint(base / "cut/checkpoints/last.pt")
    f0_term = {"regression": "train_f0_l1", "bins": "train_f0_ce"}[a["config"]["inverter"]["estimator_head"]]
    assert {"train_spectral", f0_term, "train_vuv_bce"} <= set(metrics)  # ddsp_tiny: regression; nsf_tiny: bins
    assert a["step"] == b["step"] == 4
    adversarial = a["config"]["inverter"]["discriminator"] != "none"
    prefix = "generator." if adversarial else ""  # with discriminators the model is a GanPair's generator
    assert any(k.startswith(prefix + "estimator.") for k in a["model"]) and any(k.startswith(prefix + "vocoder.") for k in a["model"])
    assert adversarial == any(k.startswith("discriminator.") for k in a["model"])
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    names = ("discriminator", "model") if adversarial else ("model",)
    assert tuple(a["optimizers"]) == names
    for name in names:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys() and len(sa) > 0
        for k in sa:
            assert all(torch.equal(sa[k][f], sb[k][f]) for f in sa[k]), k
    if adversarial:  # the discriminators ran after the warm-up and the generator felt them
        assert {"train_adversarial", "train_feature_matching", "train_discriminator"} <= set(metrics)
    assert resumed["valid_mel_l1"] == straight["valid_mel_l1"]
    assert resumed["valid_f0_cents"] == straight["valid_f0_cents"]


def test_the_trained_inverter_through_melforge_invert(trained, speech_clips, tmp_path, capsys, monkeypatch):
    """melforge-invert's own task, in process: only inverter keys; the analysis is the checkpoint's."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from melforge.core.cli.invert import _task
    from melforge.core.inversion import check_invert_config

    base, name = trained[0], trained[3]
    clip = next(c for c in speech_clips if len(c.audio) > c.sr)
    sf.write(tmp_path / "in.wav", clip.audio[: clip.sr], clip.sr)
    monkeypatch.chdir(tmp_path)
    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        cfg = compose("invert", overrides=["input=in.wav", "output=out.wav", f"inverter={name}",
                                           f"inverter.checkpoint={base / 'straight/checkpoints/last.pt'}"])
    cfg = OmegaConf.to_container(cfg, resolve=True)
    check_invert_config(cfg)
    _task(cfg, str(tmp_path))
    out, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and abs(len(out) - 16000) <= 256 and np.isfinite(out).all() and np.abs(out).max() > 1e-6
    assert f"[{name}, log_mel]" in capsys.readouterr().out


def test_batched_inversion_equals_one_clip_at_a_time_and_other_geometries_are_refused(trained):
    from melforge.core.plugins import registries
    from melforge.plugins.representations.log_mel import LogMel

    name = trained[3]
    vocoder = registries().inverter.build({"name": name, "checkpoint": str(trained[0] / "straight/checkpoints/last.pt")})
    rep = LogMel(sr=16000, n_fft=1024, hop_length=256, n_mels=64, fmax=8000.0)
    assert vocoder.representation_config() == {"name": "log_mel", **rep.config()}
    g = np.random.default_rng(0)
    mels = np.exp(g.normal(-4, 2, size=(3, 12, 64)))
    batch = vocoder.invert_mel_batch(mels).numpy()
    assert batch.shape == (3, 12 * 256)
    for k in range(3):  # every row's noise comes from seed 0, alone or batched
        np.testing.assert_allclose(vocoder.invert_mel(mels[k], rep.mel_basis, rep.stft), batch[k, : 11 * 256], rtol=1e-3, atol=1e-4)
    other = LogMel(sr=22050, n_fft=1024, hop_length=256, n_mels=80, fmax=8000.0)
    with pytest.raises(ValueError, match=r"sr 16000 Hz, n_fft 1024, hop 256, window 1024, 64 mels.*sr 22050 Hz.*80 mels"):
        other.to_audio(np.zeros((20, 80), np.float32), vocoder)
    with pytest.raises(ValueError, match=f"inverter.checkpoint=.*experiment={name}_tiny"):
        rep.to_audio(np.zeros((20, 64), np.float32), registries().inverter.build({"name": name}))


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    from melforge.core.checkpoint import save_checkpoint
    from melforge.plugins.source_filter.inverter import build_source_filter_vocoder

    state = {"step": 1, "model": {}, "config": {"trains": "inverter", "inverter": {"name": "hifigan", "generator": "hifigan"}},
             "normalizer": None}
    path = save_checkpoint(tmp_path, 1, state)
    with pytest.raises(ValueError, match=r"not a source-filter vocoder checkpoint \(its run trained inverter hifigan\)"):
        build_source_filter_vocoder(checkpoint=str(path))


@pytest.mark.parametrize("name", ["ddsp", "nsf", "nsf_hifigan"])
def test_each_registered_name_defaults_to_what_its_config_file_says(name):
    from pathlib import Path

    import yaml

    from melforge.core.plugins import registries

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "inverter" / f"{name}.yaml").read_text())
    regs = registries()
    assert regs.inverter.build({"name": name}).setup == regs.inverter.build(cfg).setup
    assert cfg["generator"] == name
    assert cfg["spectral_loss"] == {"nsf_hifigan": "mrstft"}.get(name, name)
    assert (cfg["discriminator"] != "none") == (name == "nsf_hifigan")  # DDSP and hn-NSF train without one


@pytest.mark.parametrize("generator", ["ddsp", "nsf", "nsf_hifigan"])
def test_the_training_pass_under_bf16_autocast_gives_float32_audio_near_fp32(generator):
    from melforge.plugins.source_filter.setup import SourceFilterSetup

    torch.manual_seed(0)
    keys = {"ddsp": {"hidden": 16, "mlp_layers": 1, "harmonics": 8}, "nsf": {"channels": 8, "blocks": 1, "layers": 3},
            "nsf_hifigan": {"variant": "v3", "initial_channels": 16}}[generator]
    model = SourceFilterSetup(generator=generator, vocoder_keys=keys, estimator_channels=8).build(12, SR, 256)
    args = (torch.randn(2, 6, 12), torch.full((2, 6), 150.0), torch.ones(2, 6), torch.tensor([1, 2]))
    with torch.no_grad():
        full = model.teacher_forced(*args)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model.teacher_forced(*args)[0]
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    assert float((half - full).pow(2).mean()) < 0.01 * float(full.pow(2).mean())
