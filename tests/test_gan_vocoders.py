"""GAN vocoders (issue 18): HiFi-GAN's generator sizes against Table 5 of Kong et al. 2020, the
discriminators' shapes, the adversarial and feature-matching losses on values worked out by
hand, the mel and multi-resolution STFT losses, a tiny training run that is cut and resumed
exactly, and the trained inverter through ``melforge-invert``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from melforge.plugins.gan_vocoders.hifigan import VARIANTS, HifiGanGenerator, spec_from_config
from melforge.plugins.gan_vocoders.layers import count_parameters


# --- HiFi-GAN's generator (Table 5) --------------------------------------------------------------

@pytest.mark.parametrize("variant, millions", [("v1", 13.92), ("v2", 0.92), ("v3", 1.46)])
def test_hifigan_generator_parameter_counts_match_table_5(variant, millions):
    g = HifiGanGenerator(VARIANTS[variant], 80)
    assert count_parameters(g) / 1e6 == pytest.approx(millions, rel=0.01)


def test_hifigan_generator_upsamples_by_the_hop_and_stays_in_range():
    g = HifiGanGenerator(spec_from_config("v3", {"initial_channels": 16}), 12)
    assert g.hop == 256
    audio = g(torch.randn(2, 5, 12) * 3)
    assert audio.shape == (2, 5 * 256) and audio.abs().max() <= 1
    with pytest.raises(ValueError, match=r"\(batch, frames, 12\)"):
        g(torch.randn(2, 5, 13))
    with pytest.raises(ValueError, match="variant"):
        spec_from_config("v9")


# --- MelGAN and iSTFTNet -----------------------------------------------------------------------

def test_melgan_generator_has_the_papers_size_and_its_discriminator_three_scales():
    from melforge.plugins.gan_vocoders.melgan import MelGanDiscriminator, MelGanGenerator

    g = MelGanGenerator(80)
    assert count_parameters(g) / 1e6 == pytest.approx(4.26, rel=0.01)  # MelGAN Table 3: 4.26 M
    assert g.hop == 256 and g(torch.randn(2, 7, 80)).shape == (2, 7 * 256)
    judged = MelGanDiscriminator()(torch.randn(2, 8192))
    # window scores: 8192 samples / 4^4 strides = 32 per window at scale 1, then 16 and 8
    assert [score.shape for score, _ in judged] == [(2, 32), (2, 16), (2, 8)]
    assert [f.shape[1] for f in judged[0][1]] == [16, 64, 256, 1024, 1024, 1024, 1]


def test_istftnet_is_hifigan_v1_stopped_after_two_stages_then_an_inverse_stft():
    from melforge.plugins.gan_vocoders.setup import GanSetup

    g = GanSetup(generator="istftnet", generator_keys={"initial_channels": 32}).build_generator(12)
    assert g.hop == 256 and len(g.trunk.ups) == 2 and g.n_fft == 16 and g.istft_hop == 4
    mel = torch.randn(2, 5, 12)
    magnitude, phase = g.spectrum(mel)
    assert magnitude.shape == phase.shape == (2, 9, 5 * 64 + 1)  # n_fft/2 + 1 bins, one frame per 4 samples
    assert (magnitude > 0).all() and (phase.abs() <= torch.pi).all()
    audio = g(mel)
    assert audio.shape == (2, 5 * 256)
    expected = torch.istft(torch.polar(magnitude, phase), 16, 4, 16, torch.hann_window(16), center=True)
    assert torch.allclose(audio, expected, atol=1e-6)
    # the size of the full C8C8I: V1 less its two ×2 stages and their MRFs
    full = GanSetup(generator="istftnet").build_generator(80)
    assert 13.0e6 < count_parameters(full) < count_parameters(HifiGanGenerator(VARIANTS["v1"], 80))


# --- discriminators and losses -------------------------------------------------------------------

def test_discriminators_judge_every_period_and_scale():
    from melforge.plugins.gan_vocoders.discriminators import hifigan_discriminators

    d = hifigan_discriminators()
    judged = d(torch.randn(2, 1000))
    assert len(judged) == 5 + 3
    for score, features in judged:
        assert score.dim() == 2 and score.shape[0] == 2 and len(features) in (6, 8)
        assert torch.equal(features[-1].flatten(1), score)
    # the period discriminators see (samples / p, p) grids: p = 11 pads 1000 up to 1001 = 91 × 11,
    # and the first (5, 1) convolution of stride 3, padding 2 leaves (91 + 4 − 5) // 3 + 1 = 31 rows
    assert judged[4][1][0].shape == (2, 32, 31, 11)
    # the MSD's scales: raw, then average-pooled by 2 twice (1000 → 501 → 251 samples)
    assert judged[5][1][0].shape[-1] == 1000 and judged[6][1][0].shape[-1] == 501 and judged[7][1][0].shape[-1] == 251
    # spectral norm on the first scale only
    norms = [type(s.convs[0].parametrizations.weight[0]).__name__ for s in d.parts[1].discriminators]
    assert norms == ["_SpectralNorm", "_WeightNorm", "_WeightNorm"]


def test_lsgan_and_hinge_losses_on_known_scores():
    from melforge.plugins.gan_vocoders import losses as L

    real = [(torch.tensor([[1.0, 0.0]]), []), (torch.tensor([[0.5]]), [])]
    fake = [(torch.tensor([[0.0, 2.0]]), []), (torch.tensor([[-1.0]]), [])]
    # D: mean((1-r)²) + mean(f²) per sub-discriminator: (0 + 1)/2 + (0 + 4)/2 = 2.5; 0.25 + 1 = 1.25
    assert float(L.lsgan_discriminator_loss(real, fake)) == pytest.approx(2.5 + 1.25)
    # G: mean((1-f)²): (1 + 1)/2 = 1; 4
    assert float(L.lsgan_generator_loss(fake)) == pytest.approx(1 + 4)
    # hinge D: mean(relu(1-r)) + mean(relu(1+f)): (0 + 1)/2 + (1 + 3)/2 = 2.5; 0.5 + 0 = 0.5
    assert float(L.hinge_discriminator_loss(real, fake)) == pytest.approx(2.5 + 0.5)
    assert float(L.hinge_generator_loss(fake)) == pytest.approx(-1.0 + 1.0)


def test_feature_matching_is_zero_for_identical_features_and_the_mean_l1_otherwise():
    from melforge.plugins.gan_vocoders.losses import feature_matching_loss

    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, generator=g)]
    judged = [(feats[-1], feats)]
    assert float(feature_matching_loss(judged, judged)) == 0.0
    shifted = [(feats[-1], [feats[0] + 0.5, feats[1] - 2.0])]
    assert float(feature_matching_loss(judged, shifted)) == pytest.approx(0.5 + 2.0)
    assert float(feature_matching_loss(judged, shifted, last=False)) == pytest.approx(0.5)


def test_torch_log_mel_matches_the_log_mel_representation(speech_audio):
    from melforge.plugins.gan_vocoders.mel import MelGeometry, TorchLogMel
    from melforge.plugins.representations.log_mel import LogMel

    rep = LogMel(sr=16000, n_fft=512, hop_length=128, win_length=400, n_mels=40)
    audio = speech_audio[0][:8000]
    g = MelGeometry(rep)
    mel = TorchLogMel(g.stft, g.mel_basis, g.floor)(torch.from_numpy(audio)[None])[0]
    assert mel.shape == (1 + 8000 // 128, 40)
    assert torch.allclose(mel, torch.from_numpy(rep.analyze(audio)), atol=2e-3)


def test_the_multi_resolution_stft_loss_is_zero_on_equal_audio_and_grows_with_noise():
    from melforge.plugins.gan_vocoders.losses import MultiResolutionStftLoss

    loss = MultiResolutionStftLoss()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4096, generator=g)
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    # half the target's amplitude at every resolution: spectral convergence ‖|Y| − |Y|/2‖ / ‖|Y|‖ = 1/2,
    # log-magnitude L1 |log ½| = log 2
    assert float(loss(x, 2 * x)) == pytest.approx(0.5 + math.log(2), rel=1e-5)
    small, large = float(loss(x + 0.01 * torch.randn(2, 4096, generator=g), x)), float(loss(x + torch.randn(2, 4096, generator=g), x))
    assert 0 < small < large


# --- training through the one loop, the trained inverter -------------------------------------------

TINY = ("inverter.initial_channels=16", "inverter.discriminator_width=0.0625", "inverter.adversarial_start=1",
        "data.crop_frames=8", "data.valid_crops=2", "data.valid_fraction=0.3", "train.batch_size=2",
        "train.log_every=1", "train.valid_every=2", "train.checkpoint_every=2", "threads=1",
        "dataset=audio_folder")


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory, speech_clips):
    root = tmp_path_factory.mktemp("speech")
    for k, clip in enumerate([c for c in speech_clips if len(c.audio) > c.sr][:8]):
        sf.write(root / f"{k}.wav", clip.audio, clip.sr)
    return root


def _cfg(folder, experiment, *extra):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        c = compose(config_name="train", overrides=[f"experiment={experiment}", f"dataset.root={folder}", *TINY, *extra])
    return OmegaConf.to_container(c, resolve=True)


@pytest.fixture(scope="module", params=["hifigan_tiny", "melgan_tiny", "istftnet_tiny"])
def trained(request, tmp_path_factory, speech_folder):
    """A twin for 4 steps (step 0 the STFT warm-up, 1-3 adversarial) straight, and cut at step 2
    and resumed; and the inverter's name."""
    from melforge.core.learners import train

    experiment = request.param
    base = tmp_path_factory.mktemp("runs")
    straight = train(_cfg(speech_folder, experiment, "train.max_steps=4"), base / "straight")
    train(_cfg(speech_folder, experiment, "train.max_steps=2"), base / "cut")
    resumed = train(_cfg(speech_folder, experiment, "train.max_steps=4"), base / "cut")
    return base, straight, resumed, experiment.removesuffix("_tiny")


def test_a_tiny_run_trains_both_optimisers_and_resumes_bit_identically(trained):
    from melforge.core.checkpoint import load_checkpoint

    base, straight, resumed, _ = trained
    assert straight["steps"] == resumed["steps"] == 4 and straight["trains"] == "inverter"
    metrics = json.loads((base / "straight/metrics.json").read_text())
    assert math.isfinite(metrics["valid_mel_l1"]) and math.isfinite(metrics["valid_mrstft"])
    assert {"train_discriminator", "train_adversarial", "train_feature_matching", "train_mrstft"} <= set(metrics)
    a, b = load_checkpoint(base / "straight/checkpoints/last.pt"), load_checkpoint(base / "cut/checkpoints/last.pt")
    assert a["step"] == b["step"] == 4
    assert any(k.startswith("generator.") for k in a["model"]) and any(k.startswith("discriminator.") for k in a["model"])
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for name in ("generator", "discriminator"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys() and len(sa) > 0
        for k in sa:
            assert all(torch.equal(sa[k][f], sb[k][f]) for f in sa[k]), (name, k)
        assert a["schedulers"][name] == b["schedulers"][name]
    # the warm-up step did not step the discriminator: 3 Adam steps, the generator 4
    first = next(iter(a["optimizers"]["discriminator"]["state"].values()))
    assert float(first["step"]) == 3 and float(next(iter(a["optimizers"]["generator"]["state"].values()))["step"]) == 4
    assert resumed["valid_mel_l1"] == straight["valid_mel_l1"]


def test_the_trained_inverter_through_melforge_invert(trained, speech_clips, tmp_path, capsys, monkeypatch):
    """melforge-invert's own task, in process: only inverter keys are given; the analysis is the checkpoint's."""
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
    assert sr == 16000 and abs(len(out) - 16000) <= 256 and np.isfinite(out).all() and np.abs(out).max() > 1e-5
    assert f"[{name}, log_mel]" in capsys.readouterr().out


def test_batched_inversion_equals_one_clip_at_a_time_and_other_geometries_are_refused(trained):
    from melforge.plugins.gan_vocoders.inverter import build_gan_vocoder
    from melforge.plugins.representations.log_mel import LogMel

    vocoder = build_gan_vocoder(checkpoint=str(trained[0] / "straight/checkpoints/last.pt"))
    rep = LogMel(sr=16000, n_fft=1024, hop_length=256, n_mels=64, fmax=8000.0)
    assert vocoder.representation_config() == {"name": "log_mel", **rep.config()}
    g = np.random.default_rng(0)
    mels = np.exp(g.normal(-4, 2, size=(3, 12, 64)))
    batch = vocoder.invert_mel_batch(mels).numpy()
    assert batch.shape == (3, 12 * 256)
    for k in range(3):
        one = vocoder.invert_mel(mels[k], rep.mel_basis, rep.stft)
        np.testing.assert_allclose(one, batch[k, : 11 * 256], atol=1e-5)
    # chunked (inverter.batch_samples): 2 · 12 · 256 samples a call is chunks of 2 clips, then 1
    chunked = build_gan_vocoder(checkpoint=str(trained[0] / "straight/checkpoints/last.pt"), batch_samples=2 * 12 * 256 + 100)
    calls = []
    chunked.trained.generator.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    np.testing.assert_allclose(chunked.invert_mel_batch(mels).numpy(), batch, atol=1e-5)
    assert calls == [2, 1]
    with pytest.raises(ValueError, match="batch_samples"):
        build_gan_vocoder(batch_samples=0)
    # a magnitude goes through its mel
    mag = np.sqrt(g.uniform(0, 1e-2, size=(12, 513)))
    assert vocoder.invert(mag, rep.stft).shape == (11 * 256,)
    other = LogMel(sr=22050, n_fft=1024, hop_length=256, n_mels=80, fmax=8000.0)
    with pytest.raises(ValueError, match=r"sr 16000 Hz, n_fft 1024, hop 256, window 1024, 64 mels.*sr 22050 Hz.*80 mels"):
        other.to_audio(np.zeros((20, 80), np.float32), vocoder)
    with pytest.raises(ValueError, match="inverter.checkpoint"):
        rep.to_audio(np.zeros((20, 64), np.float32), build_gan_vocoder())


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    from melforge.core.checkpoint import save_checkpoint
    from melforge.plugins.gan_vocoders.inverter import build_gan_vocoder

    state = {"step": 1, "model": {}, "config": {"trains": "inverter", "inverter": {"name": "pg_vocoder"}}, "normalizer": None}
    path = save_checkpoint(tmp_path, 1, state)
    with pytest.raises(ValueError, match=r"not a GAN vocoder checkpoint \(its run trained inverter pg_vocoder\)"):
        build_gan_vocoder(checkpoint=str(path))


def test_a_generator_whose_hop_is_not_the_representations_is_refused(speech_folder, tmp_path):
    from melforge.core.learners import train

    with pytest.raises(ValueError, match=r"upsamples by 256 samples per frame, but the representation's hop_length is 128"):
        train(_cfg(speech_folder, "hifigan_tiny", "representation.hop_length=128", "train.max_steps=1"), tmp_path)


@pytest.mark.parametrize("name", ["hifigan", "melgan", "istftnet"])
def test_each_registered_name_defaults_to_what_its_config_file_says(name):
    from pathlib import Path

    import yaml

    from melforge.core.plugins import registries

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "inverter" / f"{name}.yaml").read_text())
    regs = registries()
    assert regs.inverter.build({"name": name}).setup == regs.inverter.build(cfg).setup
    assert cfg["generator"] == name


def test_aligned_crops_pair_each_mel_frame_with_its_hop_of_audio_and_repeat_with_the_seed():
    from melforge.plugins.gan_vocoders.crops import AlignedCrops
    from melforge.plugins.representations.log_mel import LogMel

    rep = LogMel(sr=8000, n_fft=256, hop_length=64, n_mels=20)
    g = np.random.default_rng(0)
    clips = [g.normal(size=n).astype(np.float32) * np.linspace(0.1, 1, n, dtype=np.float32) for n in (3000, 5000)]
    crops = AlignedCrops([rep.analyze(a) for a in clips], clips, 64, 16)
    mel, audio = crops.draw(6, torch.Generator().manual_seed(3))
    again = crops.draw(6, torch.Generator().manual_seed(3))
    assert mel.shape == (6, 16, 20) and audio.shape == (6, 16 * 64)
    assert torch.equal(mel, again[0]) and torch.equal(audio, again[1])
    # frame t of the crop is centred on its sample t · hop: away from the crop's edges (where the
    # analysis of the crop alone pads), the crop's own analysis is the clip's mel
    for m, a in zip(mel, audio):
        own = torch.from_numpy(rep.analyze(a.numpy()))[:16]
        assert torch.allclose(own[3:-3], m[3:-3], atol=1e-4)
    fixed_mel, fixed_audio = crops.fixed(100)
    assert len(fixed_mel) == (1 + 3000 // 64) // 16 + (1 + 5000 // 64) // 16 and fixed_audio.shape[1] == 16 * 64
    with pytest.raises(ValueError, match="data.crop_frames=200"):
        AlignedCrops([rep.analyze(a) for a in clips], clips, 64, 200)
