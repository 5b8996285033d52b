"""MelNet single tier: causality in row-major order, cached sampler = teacher forcing,
priming, conditioning."""

from __future__ import annotations

import pytest
import torch

from melforge.core.model import SpectrogramModel
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet
from melforge.core.sampler import SampleRequest
from melforge.plugins.samplers.cached import CachedSampler


def _sample(model, **kwargs):
    """The eager cached sampler (the incremental-state protocol of MelNet)."""
    return model.sample(CachedSampler(), SampleRequest(**kwargs))


def _model(hidden=8, layers=2, k=3, cond=0, seed=0, dtype=torch.float64, **options) -> SpectrogramModel:
    torch.manual_seed(seed)
    model = SpectrogramModel(build_melnet(hidden, layers, cond, **options), GMMHead(hidden, k)).to(dtype)
    # Non-zero trainable initial states and biases, so no path is hidden by a zero.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("centralized", [False, True])
@pytest.mark.parametrize("i,j", [(0, 0), (2, 3), (4, 0), (5, 6)])
def test_output_at_ij_depends_only_on_elements_before_it(i, j, centralized):
    frames, bins = 6, 7
    model = _model(centralized=centralized, bins=bins)
    x = torch.randn(1, frames, bins, dtype=torch.float64, requires_grad=True)
    params = model.head(model.backbone(x))  # (1, frames, bins, 3K)
    params[0, i, j].sum().backward()
    grad = x.grad[0].abs()
    order = torch.arange(frames * bins).reshape(frames, bins)
    at_or_after = order >= i * bins + j
    assert torch.all(grad[at_or_after] == 0), "output depends on x at or after (i, j)"
    if i * bins + j > 0:
        assert grad[~at_or_after].max() > 0
        # Both the previous frame (time-delayed stack) and, within the frame, the previous
        # element (frequency-delayed stack) reach the output.
        if i > 0:
            assert grad[i - 1].max() > 0
        if j > 0:
            assert grad[i, j - 1] > 0


def test_cached_sampler_log_prob_equals_teacher_forced_pass():
    model = _model(hidden=16, layers=2, k=4, dtype=torch.float32)
    frames, bins = 10, 12
    result = _sample(model, batch=2, frames=frames, bins=bins, generator=torch.Generator().manual_seed(0))
    assert result.x.shape == (2, frames, bins) and torch.isfinite(result.x).all()
    teacher = model.log_prob(result.x).sum(dim=(1, 2))
    per_element = (result.log_prob - teacher).abs() / (frames * bins)
    assert torch.all(per_element < 1e-4), per_element


def test_cached_sampler_is_deterministic_and_temperature_changes_it():
    model = _model(dtype=torch.float32)
    a = _sample(model, batch=1, frames=4, bins=5, generator=torch.Generator().manual_seed(3)).x
    b = _sample(model, batch=1, frames=4, bins=5, generator=torch.Generator().manual_seed(3)).x
    c = _sample(model, batch=1, frames=4, bins=5, temperature=0.3, generator=torch.Generator().manual_seed(3)).x
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_untrained_sampler_stays_finite_over_many_frames():
    model = _model(hidden=8, layers=1, dtype=torch.float32, seed=5)
    result = _sample(model, batch=1, frames=40, bins=16, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(result.x).all() and torch.isfinite(result.log_prob).all()


def test_priming_copies_real_frames_and_continues_consistently():
    model = _model(dtype=torch.float32)
    prime = torch.randn(1, 3, 6)
    result = _sample(model, batch=1, frames=7, bins=6, prime=prime, generator=torch.Generator().manual_seed(0))
    assert torch.equal(result.x[:, :3], prime)
    assert result.sampled_elements == 4 * 6
    teacher = model.log_prob(result.x)[:, 3:].sum().detach()
    assert abs(float(result.log_prob.sum() - teacher)) / result.sampled_elements < 1e-4
    with pytest.raises(ValueError, match="prime"):
        _sample(model, batch=1, frames=7, bins=5, prime=prime)


def test_conditioning_changes_the_likelihood():
    model = _model(cond=4, dtype=torch.float32)
    x = torch.randn(1, 5, 6)
    speaker_a = torch.tensor([[1.0, 0, 0, 0]])
    speaker_b = torch.tensor([[0, 1.0, 0, 0]])
    with torch.no_grad():
        nll_a, nll_b = model.nll(x, speaker_a), model.nll(x, speaker_b)
    assert torch.isfinite(nll_a) and abs(float(nll_a - nll_b)) > 1e-4
    with pytest.raises(ValueError, match="conditioning"):
        model.nll(x)
    result = _sample(model, batch=1, frames=3, bins=6, cond=speaker_a, generator=torch.Generator().manual_seed(0))
    teacher = model.log_prob(result.x, speaker_a).sum().detach()
    assert abs(float(result.log_prob.sum() - teacher)) / 18 < 1e-4


def test_layer_counting_and_shapes():
    backbone = build_melnet(hidden_size=12, layers=3)
    assert backbone.layers == 3 and backbone.hidden_size == 12
    assert backbone(torch.randn(2, 4, 5)).shape == (2, 4, 5, 12)
    with pytest.raises(ValueError, match="layers"):
        build_melnet(hidden_size=12, layers=0)


@pytest.mark.parametrize("options", [{"centralized": True, "bins": 12}, {"context": True}, {"cond": 3}])
def test_cached_sampler_equals_teacher_forcing_with_every_option(options):
    model = _model(hidden=8, layers=2, k=3, **options)
    batch, frames, bins = 2, 5, 12
    cond = torch.eye(3, dtype=torch.float64)[:batch] if "cond" in options else None
    context = torch.randn(batch, frames, bins, dtype=torch.float64) if "context" in options else None
    result = _sample(
        model, batch=batch, frames=frames, bins=bins, cond=cond, context=context,
        generator=torch.Generator().manual_seed(1),
    )
    teacher = model.log_prob(result.x, cond, context).sum(dim=(1, 2))
    assert torch.allclose(result.log_prob, teacher, rtol=0, atol=1e-9)


def test_upsampling_tier_reads_all_of_its_context_and_only_the_past_of_x():
    """Seed 000 §5.1: the feature-extraction network is not causal and not shifted, so the
    output at (i, j) depends on every element of x_<g, and on x_g only before (i, j)."""
    frames, bins, (i, j) = 5, 6, (2, 3)
    model = _model(context=True)
    x = torch.randn(1, frames, bins, dtype=torch.float64, requires_grad=True)
    context = torch.randn(1, frames, bins, dtype=torch.float64, requires_grad=True)
    params = model.head(model.backbone(x, context=context))
    params[0, i, j].sum().backward()
    assert torch.all(context.grad[0].abs() > 0), "some context element does not reach the output"
    order = torch.arange(frames * bins).reshape(frames, bins)
    assert torch.all(x.grad[0][order >= i * bins + j] == 0)
    assert x.grad[0][order < i * bins + j].abs().max() > 0
    with pytest.raises(ValueError, match="context"):
        model.nll(x.detach())
    with pytest.raises(ValueError, match="context"):
        _model().nll(x.detach(), context=context.detach())


@pytest.mark.parametrize("options", [{}, {"context": True, "centralized": True, "bins": 6}])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(options):
    x = torch.randn(2, 4, 6, dtype=torch.float64)
    context = torch.randn(2, 4, 6, dtype=torch.float64) if options.get("context") else None
    grads = []
    for checkpoint in (False, True):
        model = _model(checkpoint=checkpoint, **options)
        loss = model.nll(x, context=context)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.equal(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_centralized_stack_needs_bins_and_matching_frames():
    with pytest.raises(ValueError, match="bins"):
        build_melnet(8, 2, centralized=True)
    backbone = build_melnet(8, 2, centralized=True, bins=6)
    with pytest.raises(ValueError, match="6 bins"):
        backbone(torch.randn(1, 3, 5))
