"""GMM head (seed 000 eq. 2–5): NLL against torch.distributions, safe sampling, biasing."""

from __future__ import annotations

import torch
from torch import distributions as D

from melforge.plugins.gmm.head import LOG_SIGMA_MAX, LOG_SIGMA_MIN, GMMHead


def _reference_log_prob(params: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
    mu, log_sigma, logits = params.split(k, dim=-1)
    mix = D.MixtureSameFamily(
        D.Categorical(logits=logits), D.Normal(mu, log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX).exp())
    )
    return mix.log_prob(x)


def test_log_prob_matches_mixture_same_family_on_random_parameters():
    torch.manual_seed(0)
    head = GMMHead(in_features=8, components=10).double()
    params = torch.randn(4, 7, 5, 30, dtype=torch.float64) * 2
    x = torch.randn(4, 7, 5, dtype=torch.float64) * 3
    ours = head.log_prob(params, x)
    ref = _reference_log_prob(params, x, 10)
    assert ours.shape == (4, 7, 5)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)


def test_log_prob_is_stable_far_in_the_tails():
    head = GMMHead(in_features=4, components=3).double()
    params = torch.zeros(1, 9, dtype=torch.float64)
    params[0, 3:6] = LOG_SIGMA_MIN  # very narrow components
    x = torch.tensor([1e3], dtype=torch.float64)
    lp = head.log_prob(params, x)
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp, _reference_log_prob(params, x, 3))


def test_sampling_never_yields_nan_or_inf_even_from_extreme_parameters():
    torch.manual_seed(1)
    head = GMMHead(in_features=4, components=10)
    params = torch.randn(2000, 30) * 50  # would overflow exp(σ̂) without the clamp
    for temperature in (1.0, 0.5, 1e-3, 3.0):
        x = head.sample(params, temperature, torch.Generator().manual_seed(0))
        assert x.shape == (2000,) and torch.isfinite(x).all()


def test_samples_follow_the_mixture():
    # Two well separated components with weights 0.25 / 0.75: the sample mean and the share
    # of draws near each mean must match the mixture.
    head = GMMHead(in_features=4, components=2).double()
    params = torch.tensor([[-4.0, 2.0, -1.0, -1.0, 0.0, torch.log(torch.tensor(3.0))]], dtype=torch.float64)
    params = params.expand(40000, 6)
    x = head.sample(params, 1.0, torch.Generator().manual_seed(0))
    share_high = (x > -1).double().mean().item()
    assert abs(share_high - 0.75) < 0.01
    assert abs(x.mean().item() - (0.25 * -4 + 0.75 * 2)) < 0.03
    hi = x[x > -1]
    assert abs(hi.std().item() - torch.exp(torch.tensor(-1.0)).item()) < 0.01


def test_low_temperature_concentrates_on_the_dominant_mode():
    head = GMMHead(in_features=4, components=2).double()
    params = torch.tensor([[-4.0, 2.0, 0.0, 0.0, 0.0, 1.0]], dtype=torch.float64).expand(5000, 6)
    x = head.sample(params, 0.05, torch.Generator().manual_seed(0))
    assert (x > -1).all()  # π ∝ softmax(π̂ / τ): the weaker mode vanishes
    assert abs(x.std().item() - torch.sqrt(torch.tensor(0.05)).item()) < 0.02  # σ·√τ


def test_same_seed_same_samples():
    head = GMMHead(in_features=4, components=5)
    params = torch.randn(100, 15)
    a = head.sample(params, 1.0, torch.Generator().manual_seed(7))
    b = head.sample(params, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_sample_is_sample_from_noise_applied_to_draw_noise():
    # The samplers draw a frame's noise up front (u, then eps) and call sample_from_noise.
    torch.manual_seed(0)
    head = GMMHead(in_features=4, components=3).double()
    params = torch.randn(2, 5, 9, dtype=torch.float64)
    for temperature in (1.0, 0.6):
        a = head.sample(params, temperature, torch.Generator().manual_seed(3))
        noise = head.draw_noise((2, 5), torch.Generator().manual_seed(3), torch.float64)
        assert noise.shape == (2, 5, 4)  # u (K = 3) then eps
        assert torch.equal(a, head.sample_from_noise(params, temperature, noise))
