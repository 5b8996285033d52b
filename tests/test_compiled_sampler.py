"""The melnet_compiled sampler against the eager cached and the re-run reference samplers: the
same spectrogram for the same seed, the teacher-forced log-likelihood (seed 000 eq. 1–9)."""

from __future__ import annotations

import pytest
import torch

from melforge.core.model import SpectrogramModel
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet
from melforge.core.sampler import SampleRequest, SamplerError
from melforge.plugins.melnet.compiled_sampler import MelNetCompiledSampler
from melforge.plugins.samplers.cached import CachedSampler
from melforge.plugins.samplers.reference import ReferenceSampler


def sample_compiled(model: SpectrogramModel, **kwargs):
    return MelNetCompiledSampler().sample(model, SampleRequest(**kwargs))


def sample_cached(model: SpectrogramModel, **kwargs):
    return CachedSampler().sample(model, SampleRequest(**kwargs))


def _model(hidden=8, layers=2, k=3, cond=0, seed=0, dtype=torch.float64, **options) -> SpectrogramModel:
    torch.manual_seed(seed)
    model = SpectrogramModel(build_melnet(hidden, layers, cond, **options), GMMHead(hidden, k)).to(dtype)
    # Non-zero trainable initial states and biases, so no path is hidden by a zero.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _both(model: SpectrogramModel, seed: int = 0, **kwargs):
    eager = sample_cached(model, generator=torch.Generator().manual_seed(seed), **kwargs)
    compiled = sample_compiled(model, generator=torch.Generator().manual_seed(seed), **kwargs)
    return eager, compiled


CASES = {
    "plain": ({}, dict(batch=1, frames=6, bins=7)),
    "batch 2": ({}, dict(batch=2, frames=5, bins=6)),
    "temperature 0.7": ({}, dict(batch=2, frames=5, bins=6, temperature=0.7)),
    "odd hidden, 3 layers": ({"hidden": 5, "layers": 3, "k": 2}, dict(batch=1, frames=4, bins=5)),
    "speaker cond (B, C)": ({"cond": 3}, dict(batch=2, frames=4, bins=6, cond=torch.eye(3, dtype=torch.float64)[:2])),
    "dense cond (B, T, F, C)": ({"cond": 2}, dict(batch=2, frames=4, bins=5, cond=torch.randn(2, 4, 5, 2, dtype=torch.float64))),
    "context": ({"context": True}, dict(batch=2, frames=4, bins=6, context=torch.randn(2, 4, 6, dtype=torch.float64))),
    "centralized": ({"centralized": True, "bins": 6}, dict(batch=2, frames=5, bins=6)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_equals_eager_for_the_same_seed(name):
    options, kwargs = CASES[name]
    model = _model(**options)
    eager, compiled = _both(model, **kwargs)
    assert compiled.x.shape == eager.x.shape and compiled.x.dtype == torch.float64
    assert compiled.sampled_elements == eager.sampled_elements
    assert (compiled.x - eager.x).abs().max() < 1e-9
    assert (compiled.log_prob - eager.log_prob).abs().max() < 1e-9
    # Different seeds give different samples (the noise is really used).
    reference = ReferenceSampler().sample(model, SampleRequest(generator=torch.Generator().manual_seed(0), **kwargs))
    assert (reference.x - compiled.x).abs().max() < 1e-9
    assert (reference.log_prob - compiled.log_prob).abs().max() < 1e-9
    other = sample_compiled(model, generator=torch.Generator().manual_seed(99), **kwargs)
    assert not torch.allclose(other.x, compiled.x)


def test_priming_copies_frames_and_matches_eager():
    model = _model()
    prime = torch.randn(2, 3, 6, dtype=torch.float64)
    eager, compiled = _both(model, batch=2, frames=7, bins=6, prime=prime)
    assert torch.equal(compiled.x[:, :3], prime)
    assert compiled.sampled_elements == 4 * 6
    assert (compiled.x - eager.x).abs().max() < 1e-9
    assert (compiled.log_prob - eager.log_prob).abs().max() < 1e-9


@pytest.mark.parametrize("name", ["plain", "batch 2", "temperature 0.7", "speaker cond (B, C)", "context", "centralized"])
def test_log_prob_equals_teacher_forced_pass(name):
    options, kwargs = CASES[name]
    model = _model(**options)
    result = sample_compiled(model, generator=torch.Generator().manual_seed(5), **kwargs)
    teacher = model.log_prob(result.x, kwargs.get("cond"), kwargs.get("context")).sum(dim=(1, 2))
    assert torch.allclose(result.log_prob, teacher, rtol=0, atol=1e-9), (result.log_prob, teacher)


def test_float32_works_and_stays_finite():
    model = _model(hidden=16, k=4, dtype=torch.float32)
    result = sample_compiled(model, batch=2, frames=30, bins=12,
                             generator=torch.Generator().manual_seed(0))
    assert result.x.dtype == torch.float32 and result.log_prob.dtype == torch.float32
    assert torch.isfinite(result.x).all() and torch.isfinite(result.log_prob).all()
    teacher = model.log_prob(result.x).sum(dim=(1, 2))
    assert torch.all((result.log_prob - teacher).abs() / (30 * 12) < 1e-4)
    eager = sample_cached(model, batch=2, frames=30, bins=12,
                          generator=torch.Generator().manual_seed(0))
    # float32 rounding differs from torch's; most draws agree to float32 precision.
    close = (result.x - eager.x).abs() < 1e-3
    assert close.float().mean() > 0.9


def test_bad_prime_shape_raises_naming_prime():
    model = _model()
    with pytest.raises(ValueError, match="prime"):
        sample_compiled(model, batch=1, frames=5, bins=6, prime=torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="prime"):
        sample_compiled(model, batch=1, frames=2, bins=6, prime=torch.zeros(1, 3, 6))


def test_bad_head_and_temperature_raise():
    model = _model()
    with pytest.raises(ValueError, match="temperature"):
        sample_compiled(model, batch=1, frames=2, bins=3, temperature=0.0)

    class OtherHead(GMMHead):
        family = "other"

    with pytest.raises(SamplerError, match="head family 'other'"):
        MelNetCompiledSampler().sample(SpectrogramModel(model.backbone, OtherHead(8, 3).double()), SampleRequest(1, 2, 3))


def test_gmm_sample_is_sample_from_noise_of_draw_noise():
    head = GMMHead(4, 3).double()
    params = torch.randn(2, 5, 9, dtype=torch.float64)
    a = head.sample(params, 0.8, torch.Generator().manual_seed(3))
    noise = head.draw_noise((2, 5), torch.Generator().manual_seed(3), torch.float64)
    assert noise.shape == (2, 5, 4)
    # u (K uniforms) first, then eps: the order the compiled kernels read
    g = torch.Generator().manual_seed(3)
    u = torch.rand(2, 5, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(2, 5, generator=g, dtype=torch.float64)
    assert torch.equal(noise[..., :3], u) and torch.equal(noise[..., 3], eps)
    assert torch.equal(a, head.sample_from_noise(params, 0.8, noise))
    with pytest.raises(ValueError, match="noise"):
        head.sample_from_noise(params, 1.0, noise[..., :3])


def test_pytorch_time_stack_path_gives_the_same_samples(monkeypatch):
    from melforge.plugins.melnet import compiled_sampler

    model = _model()
    kwargs = dict(batch=2, frames=4, bins=6, prime=torch.randn(2, 1, 6, dtype=torch.float64))
    a = sample_compiled(model, generator=torch.Generator().manual_seed(2), **kwargs)
    monkeypatch.setattr(compiled_sampler, "COMPILE_TIME_STACK", False)
    b = sample_compiled(model, generator=torch.Generator().manual_seed(2), **kwargs)
    assert (a.x - b.x).abs().max() < 1e-9 and (a.log_prob - b.log_prob).abs().max() < 1e-9
