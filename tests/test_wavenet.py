"""WaveNet (van den Oord et al. 2016; seed 000 Appendix A.2, Table 3): causality and receptive
field by gradients, the cached (Fast WaveNet queues) and wavenet_compiled samplers against the
reference sampler for the same seed, log-probability = teacher forcing, registry round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from melforge.core.model import SpectrogramModel
from melforge.core.plugins import load_registries
from melforge.core.sampler import SampleRequest, SamplerError, select_sampler
from melforge.plugins.categorical.head import CategoricalHead
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet
from melforge.plugins.samplers.cached import CachedSampler
from melforge.plugins.samplers.reference import ReferenceSampler
from melforge.plugins.wavenet import compiled_sampler
from melforge.plugins.wavenet.backbone import build_wavenet
from melforge.plugins.wavenet.causal import receptive_field
from melforge.plugins.wavenet.compiled_sampler import WaveNetCompiledSampler
from melforge.testing import check_backbone_and_samplers, check_registered

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _perturbed(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-zero biases everywhere, so that no path is hidden by a zero."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return module


def _model(layers=5, residual=6, skip=7, classes=32, cycle=3, kernel=3, cond=0, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    backbone = build_wavenet(layers, residual, skip, kernel, cycle, cond_features=cond)
    model = SpectrogramModel(backbone, CategoricalHead(skip, classes))
    return _perturbed(model, seed).to(dtype).eval()


def test_receptive_field_formula_and_table_3():
    assert receptive_field(3, [1, 2, 4]) == 1 + 2 * 7
    blizzard = build_wavenet(layers=50, residual_channels=2, skip_channels=2)
    voxceleb = build_wavenet(layers=60, residual_channels=2, skip_channels=2)
    assert blizzard.dilations[:11] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1]
    assert blizzard.receptive_field == 1 + 2 * 5 * 1023 == 10231  # Table 3: "10,240"
    assert voxceleb.receptive_field == 1 + 2 * 6 * 1023 == 12277  # Table 3: "12,288"
    assert abs(blizzard.receptive_field / 10240 - 1) < 1e-3 and abs(voxceleb.receptive_field / 12288 - 1) < 1e-3


def test_gradient_reaches_exactly_the_receptive_field():
    backbone = _model().backbone  # dilations 1, 2, 4, 1, 2: receptive field 21
    span = backbone.receptive_field
    assert span == 21
    samples = 48
    x = torch.randn(1, samples, 1, dtype=torch.float64, requires_grad=True)
    h = backbone(x)
    assert h.shape == (1, samples, 1, 7)
    projection = torch.randn(7, dtype=torch.float64)
    for t in (0, 1, 5, span, span + 6, samples - 1):
        (grad,) = torch.autograd.grad(h[0, t, 0] @ projection, x, retain_graph=True)
        reached = grad[0, :, 0] != 0
        expected = torch.zeros(samples, dtype=torch.bool)
        expected[max(0, t - span) : t] = True  # x_{t-R} ... x_{t-1}
        assert torch.equal(reached, expected), (t, reached.nonzero().flatten().tolist())


def test_conformance_kit_with_every_sampler():
    model = _model(classes=16)
    report = check_backbone_and_samplers(model.backbone, model.head, frames=24, bins=1, prime_frames=5)
    assert {"reference", "cached", "wavenet_compiled"} <= set(report.samplers)
    cond = _model(classes=16, cond=3, seed=1)
    report = check_backbone_and_samplers(cond.backbone, cond.head, frames=12, bins=1,
                                         cond=torch.eye(3, dtype=torch.float64)[:2], elements=[(11, 0)])
    assert "wavenet_compiled" in report.samplers


CASES = {
    "plain": ({}, dict(batch=1, frames=40)),
    "batch 2, 256 classes": ({"classes": 256}, dict(batch=2, frames=30)),
    "temperature 0.7": ({}, dict(batch=2, frames=30, temperature=0.7)),
    "kernel 2, no cycle": ({"kernel": 2, "cycle": 10, "layers": 6}, dict(batch=1, frames=40)),
    "speaker cond (B, C)": ({"cond": 3}, dict(batch=2, frames=25, cond=torch.eye(3, dtype=torch.float64)[[2, 0]])),
    "local cond (B, T, 1, C)": ({"cond": 2}, dict(batch=2, frames=25, cond=torch.randn(2, 25, 1, 2, dtype=torch.float64))),
}


def _draw(sampler, model, seed=0, **kwargs):
    return sampler.sample(model, SampleRequest(bins=1, generator=torch.Generator().manual_seed(seed), **kwargs))


@pytest.mark.parametrize("name", list(CASES))
def test_cached_and_compiled_equal_reference_for_the_same_seed(name):
    options, kwargs = CASES[name]
    model = _model(**options)
    reference = _draw(ReferenceSampler(), model, **kwargs)
    teacher = model.log_prob(reference.x, kwargs.get("cond")).sum(dim=(1, 2))
    torch.testing.assert_close(reference.log_prob, teacher, rtol=0, atol=1e-9)
    for sampler in (CachedSampler(), WaveNetCompiledSampler()):
        result = _draw(sampler, model, **kwargs)
        assert torch.equal(result.x, reference.x), type(sampler).__name__
        torch.testing.assert_close(result.log_prob, reference.log_prob, rtol=0, atol=1e-9)
        assert result.sampled_elements == kwargs["frames"]
    other = _draw(WaveNetCompiledSampler(), model, seed=9, **kwargs)
    assert not torch.equal(other.x, reference.x)


def test_priming_copies_samples_and_matches_reference():
    model = _model()
    prime = model.head.value_of(torch.randint(0, 32, (2, 7, 1)), torch.float64)
    kwargs = dict(batch=2, frames=30, prime=prime, temperature=0.8)
    reference = _draw(ReferenceSampler(), model, **kwargs)
    for sampler in (CachedSampler(), WaveNetCompiledSampler()):
        result = _draw(sampler, model, **kwargs)
        assert torch.equal(result.x[:, :7], prime) and result.sampled_elements == 23
        assert torch.equal(result.x, reference.x)
        torch.testing.assert_close(result.log_prob, reference.log_prob, rtol=0, atol=1e-9)
    teacher = model.log_prob(reference.x)[:, 7:].sum(dim=(1, 2))
    torch.testing.assert_close(reference.log_prob, teacher, rtol=0, atol=1e-9)


def test_compiled_in_blocks_equals_one_block(monkeypatch):
    model = _model(classes=64)
    whole = _draw(WaveNetCompiledSampler(), model, batch=2, frames=50)
    monkeypatch.setattr(compiled_sampler, "CHUNK", 7)  # noise and kernel calls in blocks of 7 samples
    blocks = _draw(WaveNetCompiledSampler(), model, batch=2, frames=50)
    assert torch.equal(whole.x, blocks.x) and torch.equal(whole.log_prob, blocks.log_prob)


def test_float32_runs_finite_and_matches_teacher_forcing():
    model = _model(layers=12, residual=16, skip=32, classes=256, cycle=10, dtype=torch.float32)
    result = _draw(WaveNetCompiledSampler(), model, batch=2, frames=600)
    assert result.x.dtype == torch.float32 and torch.isfinite(result.x).all() and torch.isfinite(result.log_prob).all()
    teacher = model.log_prob(result.x).sum(dim=(1, 2))
    assert torch.all((result.log_prob - teacher).abs() / 600 < 1e-4)
    cached = _draw(CachedSampler(), model, batch=2, frames=600)
    # float32 rounding differs from torch's; a draw can flip and the sequences then diverge.
    assert torch.equal(result.x[:, :50], cached.x[:, :50])


def test_registry_round_trip_and_sampler_selection():
    regs = load_registries(strict=True)
    backbone = check_registered("backbone", "wavenet", CONFIGS / "backbone" / "wavenet.yaml", extra={"bins": 1},
                                plugin="melforge.plugins.wavenet.plugin", registries=regs)
    check_registered("sampler", "wavenet_compiled", plugin="melforge.plugins.wavenet.plugin", registries=regs)
    head = regs.head.build({"name": "categorical"}, in_features=backbone.hidden_size)
    assert backbone.family == "wavenet" and backbone.incremental and backbone.receptive_field == 4093
    assert isinstance(select_sampler(regs.sampler, None, backbone, head), WaveNetCompiledSampler)
    assert isinstance(select_sampler(regs.sampler, "cached", backbone, head), CachedSampler)
    with pytest.raises(SamplerError, match="head family 'gmm'"):
        select_sampler(regs.sampler, "wavenet_compiled", backbone, GMMHead(backbone.hidden_size, 3))
    with pytest.raises(SamplerError, match="backbone family 'melnet'"):
        select_sampler(regs.sampler, "wavenet_compiled", build_melnet(8, 1), head)
    conditioned = regs.backbone.build({"name": "wavenet", "layers": 2}, cond_features=4, bins=1)
    assert conditioned.cond_features == 4
    with pytest.raises(ValueError, match="bins=2"):
        regs.backbone.build({"name": "wavenet"}, bins=2)
    with pytest.raises(ValueError, match="tiers"):
        regs.backbone.build({"name": "wavenet"}, bins=1, context=True)


def test_bad_inputs_raise():
    model = _model(cond=2)
    cond = torch.zeros(1, 2, dtype=torch.float64)
    for sampler in (CachedSampler(), WaveNetCompiledSampler()):
        with pytest.raises(ValueError, match="bins=1"):
            sampler.sample(model, SampleRequest(batch=1, frames=4, bins=2, cond=cond))
        with pytest.raises(ValueError, match="context"):
            sampler.sample(model, SampleRequest(batch=1, frames=4, bins=1, cond=cond,
                                                context=torch.zeros(1, 4, 1, dtype=torch.float64)))
        with pytest.raises(ValueError, match="cond_features 2"):
            _draw(sampler, model, batch=1, frames=4, cond=torch.zeros(1, 3, dtype=torch.float64))
        with pytest.raises(ValueError, match="expects conditioning"):
            _draw(sampler, model, batch=1, frames=4)
    with pytest.raises(ValueError, match=r"\(batch, samples, 1\)"):
        model.backbone(torch.zeros(1, 4, 2, dtype=torch.float64), cond)
    with pytest.raises(ValueError, match="local conditioning has 3 samples"):
        model.backbone(torch.zeros(1, 4, 1, dtype=torch.float64), torch.zeros(1, 3, 2, dtype=torch.float64))
