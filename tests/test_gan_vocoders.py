"""GAN vocoders (issue 18): HiFi-GAN's generator sizes against Table 5 of Kong et al. 2020, the
discriminators' shapes, the adversarial and feature-matching losses on values worked out by
hand, the mel and multi-resolution STFT losses, a tiny training run that is cut and resumed
exactly, and the trained inverter through ``melforge-invert``."""

from __future__ import annotations

import pytest
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
    small, large = float(loss(x + 0.01 * torch.randn(2, 4096, generator=g), x)), float(loss(x + torch.randn(2, 4096, generator=g), x))
    assert 0 < small < large
