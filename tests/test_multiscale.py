"""The multiscale model (seed 000 §5): upsampling-tier causality, sampling coarse to fine with
the compiled and eager samplers, priming in every tier, per-tier temperatures, conditioning."""

from __future__ import annotations

import pytest
import torch

from melforge.core.model import SpectrogramModel
from melforge.core.multiscale import MultiscaleModel
from melforge.plugins.gmm.head import GMMHead
from melforge.core.sampler import Sampler
from melforge.plugins.melnet.backbone import build_melnet
from melforge.plugins.melnet.compiled_sampler import MelNetCompiledSampler
from melforge.plugins.samplers.cached import CachedSampler

SAMPLERS: dict[str, Sampler] = {"compiled": MelNetCompiledSampler(), "eager": CachedSampler()}


def _model(tiers=3, hidden=8, cond=0, seed=0, dtype=torch.float64) -> MultiscaleModel:
    torch.manual_seed(seed)
    model = MultiscaleModel(
        [
            SpectrogramModel(
                build_melnet(hidden, 2 if g == 1 else 1, cond, context=g > 1), GMMHead(hidden, 3)
            )
            for g in range(1, tiers + 1)
        ]
    ).to(dtype)
    with torch.no_grad():  # non-zero initial states and biases, so no path is hidden by a zero
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("g", [2, 3])
def test_upsampling_tier_depends_on_all_of_the_context_and_only_the_past_of_its_tier(g):
    model = _model(tiers=3)
    frames, bins = 8, 6
    x = torch.randn(1, frames, bins, dtype=torch.float64, requires_grad=True)
    parts = model.schedule.split(x)
    x_g, context = parts[g - 1]
    fg, bg = x_g.shape[1:]
    i, j = fg // 2, bg // 2
    params = model.tiers[g - 1].head(model.tiers[g - 1].backbone(x_g, context=context))
    params[0, i, j].sum().backward()
    # Which elements of x belong to x_g and where: split an index map the same way.
    index = torch.arange(frames * bins, dtype=torch.float64).reshape(1, frames, bins)
    idx_g, idx_ctx = model.schedule.split(index)[g - 1]
    grad = x.grad.reshape(-1)
    assert torch.all(grad[idx_ctx.reshape(-1).long()] != 0), "an element of x_<g does not reach the output"
    order = torch.arange(fg * bg).reshape(fg, bg)
    tier_idx = idx_g[0].long()
    assert torch.all(grad[tier_idx[order >= i * bg + j]] == 0), "output depends on x_g at or after (i, j)"
    assert grad[tier_idx[order < i * bg + j]].abs().max() > 0
    # Elements of finer tiers (not in x_<=g) are never read.
    finer = set(range(frames * bins)) - set(idx_ctx.reshape(-1).long().tolist()) - set(tier_idx.reshape(-1).tolist())
    assert all(grad[k] == 0 for k in finer)


@pytest.mark.parametrize("tiers", [1, 2, 4])
def test_compiled_and_eager_multiscale_samples_are_identical_and_match_teacher_forcing(tiers):
    compiled = eager = _model(tiers=tiers)
    frames, bins = 8, 8
    a = compiled.sample(SAMPLERS["compiled"], batch=2, frames=frames, bins=bins, generator=torch.Generator().manual_seed(4))
    b = eager.sample(SAMPLERS["eager"], batch=2, frames=frames, bins=bins, generator=torch.Generator().manual_seed(4))
    assert a.x.shape == (2, frames, bins)
    assert torch.allclose(a.x, b.x, rtol=0, atol=1e-9)
    assert len(a.tiers) == tiers and a.sampled_elements == frames * bins
    teacher = {g: lp.sum(dim=(1, 2)) for g, lp in compiled.tier_log_probs(a.x).items()}
    for g in range(1, tiers + 1):
        assert torch.allclose(a.tier_log_probs[g - 1], teacher[g], rtol=0, atol=1e-8)
    assert torch.allclose(a.log_prob, compiled.log_prob(a.x), rtol=0, atol=1e-8)


def test_priming_copies_the_real_frames_in_every_tier():
    model = _model(tiers=3)  # one time split: prime frames must be even
    prime = torch.randn(1, 4, 8, dtype=torch.float64)
    result = model.sample(SAMPLERS["compiled"], batch=1, frames=8, bins=8, prime=prime, generator=torch.Generator().manual_seed(0))
    assert torch.equal(result.x[:, :4], prime)
    assert result.sampled_elements == 4 * 8
    assert not torch.equal(result.x[:, 4:], torch.zeros_like(result.x[:, 4:]))
    # The accumulated log-probability covers exactly the sampled (unprimed) elements. With one
    # time split (tier 3), the 4 primed frames are the first 2 frames of every tier.
    for g, lp in model.tier_log_probs(result.x).items():
        assert torch.allclose(result.tier_log_probs[g - 1], lp[:, 2:].sum(dim=(1, 2)), rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="multiple of 2"):
        model.sample(SAMPLERS["compiled"], batch=1, frames=8, bins=8, prime=prime[:, :3])


def test_temperature_per_tier_and_bad_shapes():
    model = _model(tiers=2)
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    a = model.sample(SAMPLERS["compiled"], batch=1, frames=4, bins=8, temperature=[1.0, 1.0], generator=gen()).x
    b = model.sample(SAMPLERS["compiled"], batch=1, frames=4, bins=8, temperature=1.0, generator=gen()).x
    c = model.sample(SAMPLERS["compiled"], batch=1, frames=4, bins=8, temperature=[1.0, 0.5], generator=gen())
    assert torch.equal(a, b)
    assert torch.equal(c.tiers[0], model.schedule.split(a)[0][0]) and not torch.equal(c.x, a)
    with pytest.raises(ValueError, match="one per tier"):
        model.sample(SAMPLERS["compiled"], batch=1, frames=4, bins=8, temperature=[1.0, 0.5, 0.2])
    with pytest.raises(ValueError, match="bins a multiple of 2"):
        model.sample(SAMPLERS["compiled"], batch=1, frames=4, bins=7)


def test_speaker_conditioning_changes_every_tier_nll():
    model = _model(tiers=3, cond=4)
    x = torch.randn(2, 8, 8, dtype=torch.float64)
    a = torch.eye(4, dtype=torch.float64)[[0, 0]]
    b = torch.eye(4, dtype=torch.float64)[[1, 2]]
    with torch.no_grad():
        nll_a, nll_b = model.tier_nlls(x, a), model.tier_nlls(x, b)
    for g in (1, 2, 3):
        assert abs(float(nll_a[g] - nll_b[g])) > 1e-6


def test_tiers_must_take_a_context_exactly_when_they_upsample():
    plain = SpectrogramModel(build_melnet(8, 1), GMMHead(8, 3))
    upsampling = SpectrogramModel(build_melnet(8, 1, context=True), GMMHead(8, 3))
    with pytest.raises(ValueError, match="tier 2"):
        MultiscaleModel([plain, plain])
    with pytest.raises(ValueError, match="tier 1"):
        MultiscaleModel([upsampling])
    with pytest.raises(ValueError, match="at least one"):
        MultiscaleModel([])
