"""Categorical head (van den Oord et al. 2016 §2.2; seed 000 Appendix A.2): log-probability
against torch.distributions, the noise protocol, biasing, and the Numba maths
(plugins/categorical/maths.py) against the torch head on the same noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from numba import njit
from torch import distributions as D

from melforge.core import vector_maths
from melforge.plugins.categorical import maths
from melforge.plugins.categorical.head import CategoricalHead
from melforge.testing import check_head_log_prob, check_head_sampling, check_registered

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _head(classes: int = 256) -> CategoricalHead:
    return CategoricalHead(in_features=8, classes=classes).double()


def test_log_prob_matches_torch_categorical_in_nats():
    head = _head(7)
    check_head_log_prob(head, lambda params: D.Categorical(logits=params), to_value=head.value_of)
    generator = torch.Generator().manual_seed(0)
    params = 3 * torch.randn(4, 5, 7, generator=generator, dtype=torch.float64)
    levels = torch.randint(0, 7, (4, 5), generator=generator)
    values = head.value_of(levels, torch.float64)
    expected = D.Categorical(logits=params).log_prob(levels)
    torch.testing.assert_close(head.log_prob(params, values), expected, rtol=0, atol=1e-12)
    # A value between levels counts as its nearest level; outside [-1, 1] as the end level.
    off_grid = (values + 0.2 / 6).clamp(max=1.0)
    torch.testing.assert_close(head.log_prob(params, off_grid), expected, rtol=0, atol=1e-12)
    edge = torch.full((4, 5), 3.0, dtype=torch.float64)
    torch.testing.assert_close(head.log_prob(params, edge), D.Categorical(logits=params).log_prob(torch.full((4, 5), 6)))


def test_draws_follow_the_tempered_softmax_and_the_noise_protocol():
    head = _head(5)
    check_head_sampling(head, lambda params: D.Categorical(logits=params), to_value=head.value_of)
    # τ = 0.5: the levels' frequencies follow softmax(l / τ).
    logits = torch.tensor([0.0, 1.0, -1.0, 0.5, 2.0], dtype=torch.float64)
    draws = head.sample(logits.expand(40000, 5), 0.5, torch.Generator().manual_seed(0))
    freq = torch.bincount(head.level_of(draws), minlength=5).double() / 40000
    torch.testing.assert_close(freq, torch.softmax(logits / 0.5, dim=0), rtol=0, atol=0.01)


def test_sample_equals_sample_from_draw_noise_and_low_temperature_picks_the_argmax():
    head = _head()
    params = 2 * torch.randn(3, 4, 256, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for temperature in (1.0, 0.7):
        a = head.sample(params, temperature, torch.Generator().manual_seed(2))
        noise = head.draw_noise((3, 4), torch.Generator().manual_seed(2), torch.float64)
        assert noise.shape == (3, 4, 256)
        assert torch.equal(a, head.sample_from_noise(params, temperature, noise))
    cold = head.sample(params, 1e-8, torch.Generator().manual_seed(3))
    assert torch.equal(head.level_of(cold), params.argmax(dim=-1))


def test_draw_noise_in_one_block_equals_per_frame_calls():
    # What the compiled WaveNet sampler relies on: one call for (n, batch, 1) = n calls for (batch, 1).
    head = _head()
    for dtype in (torch.float32, torch.float64):
        g = torch.Generator().manual_seed(4)
        frames = torch.stack([head.draw_noise((2, 1), g, dtype) for _ in range(9)])
        block = head.draw_noise((9, 2, 1), torch.Generator().manual_seed(4), dtype)
        assert torch.equal(frames, block)


def test_never_nan_from_extreme_logits_or_noise():
    head = CategoricalHead(4, 256)
    params = 1e4 * torch.randn(500, 256, generator=torch.Generator().manual_seed(0))
    noise = torch.rand(500, 256, generator=torch.Generator().manual_seed(1))
    noise[:, ::3] = 0.0  # log(0) without the clamp
    noise[:, 1::3] = 1.0 - 1e-12
    for temperature in (1.0, 0.5, 1e-3, 3.0):
        x = head.sample_from_noise(params, temperature, noise)
        assert torch.isfinite(x).all() and x.abs().max() <= 1
    assert torch.isfinite(head.log_prob(params, head.sample_from_noise(params, 1.0, noise))).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="classes"):
        CategoricalHead(4, classes=1)
    head = _head(5)
    params = torch.zeros(2, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="temperature"):
        head.sample(params, 0.0)
    with pytest.raises(ValueError, match="noise shape"):
        head.sample_from_noise(params, 1.0, torch.zeros(2, 4, dtype=torch.float64))


@njit(cache=True)
def _numba_draws(logits, noise, temperature):
    levels = np.empty(logits.shape[0], np.int64)
    log_probs = np.empty(logits.shape[0])
    score = np.empty(logits.shape[1])
    for n in range(logits.shape[0]):
        levels[n] = maths.draw(logits[n], noise[n], temperature, score)
        log_probs[n] = maths.log_prob(logits[n], levels[n], score)
    return levels, log_probs


@njit(cache=True)
def _numba_levels(values, classes):
    out = np.empty(values.shape[0], np.int64)
    back = np.empty(values.shape[0])
    for n in range(values.shape[0]):
        out[n] = maths.level_of(values[n], classes)
        back[n] = maths.value_of(out[n], classes)
    return out, back


def test_numba_maths_equal_the_torch_head_for_the_same_noise():
    head = _head()
    generator = torch.Generator().manual_seed(5)
    params = 3 * torch.randn(2000, 256, generator=generator, dtype=torch.float64)
    noise = head.draw_noise((2000,), generator, torch.float64)
    for temperature in (1.0, 0.7, 2.0):
        levels, log_probs = _numba_draws(params.numpy(), noise.numpy(), temperature)
        ours = head.sample_from_noise(params, temperature, noise)
        assert np.array_equal(levels, head.level_of(ours).numpy())
        np.testing.assert_allclose(log_probs, head.log_prob(params, ours).numpy(), rtol=0, atol=1e-12)
    values = torch.linspace(-1.3, 1.3, 5001, dtype=torch.float64)
    levels, back = _numba_levels(values.numpy(), 256)
    assert np.array_equal(levels, head.level_of(values).numpy())
    assert np.array_equal(back, head.value_of(head.level_of(values), torch.float64).numpy())


def test_log_vec_is_within_a_few_ulp_of_log():
    @njit
    def logs(x):
        out = np.empty_like(x)
        for n in range(x.shape[0]):
            out[n] = vector_maths.log_vec(x[n])
        return out

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(1e-7, 30.0, 20000), np.exp(rng.uniform(-30.0, 5.0, 20000)), [1.0, 2.0, 1 - 1e-7]])
    ulp = np.abs(logs(x) - np.log(x)) / np.spacing(np.abs(np.log(x)) + 1e-300)
    assert ulp.max() <= 4


def test_registered_with_its_config():
    head = check_registered("head", "categorical", CONFIGS / "head" / "categorical.yaml", extra={"in_features": 8},
                            plugin="melforge.plugins.categorical.plugin")
    assert head.classes == 256 and head.family == "categorical"
