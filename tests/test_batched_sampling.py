"""Issue 19: the batched compiled samplers (weights read once per step for all streams) against
the reference sampler at batch 1 and 4 in float64, the weight cache (no second extraction,
invalidated by an optimiser step), the head-declared maths, 16-bit weights and column threads
of the shared batched product."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melforge.core.model import SpectrogramModel
from melforge.core.sampler import SampleRequest
from melforge.plugins import batched_matmul as bm
from melforge.plugins.categorical.head import CategoricalHead
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet
from melforge.plugins.melnet.compiled_sampler import MelNetCompiledSampler
from melforge.plugins.samplers.reference import ReferenceSampler
from melforge.plugins.wavenet.backbone import build_wavenet
from melforge.plugins.wavenet.compiled_sampler import WaveNetCompiledSampler
from melforge.testing import check_backbone_and_samplers, check_sampler_matches_reference


def _perturbed(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _wavenet(classes=16, cond=0, dtype=torch.float64, layers=5, residual=6, skip=7):
    torch.manual_seed(0)
    backbone = build_wavenet(layers, residual, skip, 3, 3, cond_features=cond)
    return _perturbed(SpectrogramModel(backbone, CategoricalHead(skip, classes))).to(dtype)


def _melnet(hidden=8, layers=2, k=3, dtype=torch.float64, **options):
    torch.manual_seed(0)
    return _perturbed(SpectrogramModel(build_melnet(hidden, layers, 0, **options), GMMHead(hidden, k))).to(dtype)


def _draw(sampler, model, seed=0, **kwargs):
    return sampler.sample(model, SampleRequest(generator=torch.Generator().manual_seed(seed), **kwargs))


# --- the shared batched product -------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3, 4, 9])
@pytest.mark.parametrize("n_in", [5, 8, 13])
def test_matmul_equals_numpy_and_each_stream_is_batch_independent(batch, n_in):
    rng = np.random.default_rng(batch * 100 + n_in)
    wt = rng.standard_normal((n_in, 21))
    v = rng.standard_normal((batch, n_in))
    y0 = rng.standard_normal((batch, 21))
    y = y0.copy()
    bm.matmul(wt, v, y, bm.scratch_for(21, 1), bm.FP32)
    np.testing.assert_allclose(y, y0 + v @ wt, rtol=0, atol=1e-12)
    for b in range(batch):  # the same stream alone: bit-identical (the sum order is per stream)
        alone = y0[b:b + 1].copy()
        bm.matmul(wt, v[b:b + 1], alone, bm.scratch_for(21, 1), bm.FP32)
        assert np.array_equal(alone[0], y[b])


@pytest.mark.parametrize("fmt", ["fp32", "fp16", "bf16"])
def test_column_threads_are_bit_identical_to_one_thread(fmt):
    rng = np.random.default_rng(0)
    wt = bm.store(rng.standard_normal((37, 70)).astype(np.float32), fmt)
    v = rng.standard_normal((6, 37)).astype(np.float32)
    one, two = np.zeros((6, 70), np.float32), np.zeros((6, 70), np.float32)
    bm.matmul(wt, v, one, bm.scratch_for(70, 1), bm.FORMATS[fmt])
    bm.matmul(wt, v, two, bm.scratch_for(70, 3), bm.FORMATS[fmt])
    assert np.array_equal(one, two)


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
def test_sixteen_bit_weights_decode_exactly_and_accumulate_in_float32(fmt):
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((16, 40)) * np.logspace(-6, 2, 40)).astype(np.float32)
    w[0, :3] = [0.0, -0.0, 1e-7]  # zero, negative zero, an fp16 subnormal
    bits = bm.to_bits(w, fmt)
    exact = bm.from_bits(bits, fmt)
    if fmt == "fp16":
        np.testing.assert_array_equal(exact, w.astype(np.float16).astype(np.float32))
    else:  # bf16: the top 16 bits rounded to nearest even, as torch rounds to bfloat16
        np.testing.assert_array_equal(exact, torch.from_numpy(w).to(torch.bfloat16).float().numpy())
    v = np.eye(16, dtype=np.float32)  # y = the decoded rows themselves
    y = np.zeros((16, 40), np.float32)
    bm.matmul(bits, v, y, bm.scratch_for(40, 1), bm.FORMATS[fmt])
    np.testing.assert_array_equal(y, exact)
    with pytest.raises(ValueError, match="weights"):
        bm.store(w, "int8")


def test_choose_chunks_is_one_below_the_threshold_and_honours_an_int():
    wt = np.zeros((8, 8), np.float32)
    assert bm.choose_chunks(wt, 4, np.float32, "fp32", "auto") == 1
    assert bm.choose_chunks(wt, 4, np.float32, "fp32", 3) == 3
    with pytest.raises(ValueError, match="threads"):
        bm.choose_chunks(wt, 4, np.float32, "fp32", 0)


# --- the samplers against reference, batch 1 and 4 -------------------------------------------


@pytest.mark.parametrize("batch", [1, 4])
def test_wavenet_compiled_equals_reference_at_batch(batch):
    model = _wavenet(cond=2)
    cond = torch.randn(batch, 2, dtype=torch.float64)
    check_sampler_matches_reference(model, WaveNetCompiledSampler(), frames=30, bins=1, batch=batch, cond=cond)
    check_sampler_matches_reference(model, WaveNetCompiledSampler(threads=2), frames=20, bins=1, batch=batch,
                                    cond=cond, temperature=0.8, seed=3)


@pytest.mark.parametrize("batch", [1, 4])
def test_melnet_compiled_equals_reference_at_batch(batch):
    check_sampler_matches_reference(_melnet(), MelNetCompiledSampler(), frames=4, bins=6, batch=batch)
    check_sampler_matches_reference(_melnet(hidden=5, layers=3), MelNetCompiledSampler(threads=2), frames=3, bins=5,
                                    batch=batch, temperature=0.7, seed=2)


def test_conformance_kit_at_batch_4():
    model = _wavenet()
    report = check_backbone_and_samplers(model.backbone, model.head, frames=16, bins=1, batch=4, prime_frames=3,
                                         samplers=["reference", "wavenet_compiled"])
    assert report.samplers == ["reference", "wavenet_compiled"]
    mel = _melnet()
    report = check_backbone_and_samplers(mel.backbone, mel.head, frames=3, bins=5, batch=4, prime_frames=1,
                                         samplers=["reference", "melnet_compiled"])
    assert report.samplers == ["reference", "melnet_compiled"]


# --- the weight cache -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wavenet", "melnet"])
def test_second_call_pays_no_extraction_and_a_step_invalidates(kind):
    model = _wavenet() if kind == "wavenet" else _melnet()
    shape = dict(batch=2, frames=12, bins=1) if kind == "wavenet" else dict(batch=2, frames=3, bins=5)
    sampler = WaveNetCompiledSampler() if kind == "wavenet" else MelNetCompiledSampler()
    first = _draw(sampler, model, **shape)
    again = _draw(sampler, model, **shape)
    assert sampler.cache.extractions == 1
    assert torch.equal(first.x, again.x) and torch.equal(first.log_prob, again.log_prob)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    loss = -model.log_prob(first.x).sum()
    loss.backward()
    optimiser.step()
    model.eval()
    after = _draw(sampler, model, **shape)
    assert sampler.cache.extractions == 2
    reference = _draw(ReferenceSampler(), model, **shape)  # the trained weights, not the cached ones
    assert (after.x - reference.x).abs().max() < 1e-9
    assert (after.log_prob - reference.log_prob).abs().max() < 1e-9
    assert not torch.equal(after.log_prob, first.log_prob)


# --- the head's declared maths ---------------------------------------------------------------


def _lowest(params, n_params, noise, n_noise, temperature, scratch, n_scratch):
    return -1.0


def _zero(params, n_params, value, scratch, n_scratch):
    return 0.0


def test_the_kernels_use_the_maths_the_head_declares():
    """A head whose declared draw always gives the lowest level and log-probability 0: the
    compiled sampler's draws follow it (the kernels call what the head declares)."""
    from melforge.core.head import CompiledMaths
    from melforge.plugins.head_cfuncs import c_functions

    class Lowest(CategoricalHead):
        def compiled_maths(self, dtype):
            draw, log_prob = c_functions(_lowest, _zero, np.float64)
            return CompiledMaths(draw=draw, log_prob=log_prob, scratch=1)

    model = _wavenet()
    head = Lowest(model.head.in_features, model.head.classes).double()
    head.load_state_dict(model.head.state_dict())
    result = _draw(WaveNetCompiledSampler(), SpectrogramModel(model.backbone, head), batch=2, frames=9, bins=1)
    assert torch.equal(result.x, torch.full((2, 9, 1), -1.0, dtype=torch.float64))
    assert torch.equal(result.log_prob, torch.zeros(2, dtype=torch.float64))


# --- 16-bit weights in the samplers -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
def test_sixteen_bit_sampler_equals_fp32_on_weights_already_rounded(fmt):
    """With weights that are exactly representable at 16 bits, fp16/bf16 storage changes no
    product: the draws equal the float32 sampler's bit for bit."""
    for model, shape, cls in (
        (_wavenet(dtype=torch.float32, residual=8, skip=8), dict(batch=3, frames=40, bins=1), WaveNetCompiledSampler),
        (_melnet(dtype=torch.float32), dict(batch=3, frames=3, bins=6), MelNetCompiledSampler),
    ):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.from_numpy(bm.from_bits(bm.to_bits(p.numpy(), fmt), fmt)))
        full = _draw(cls(), model, **shape)
        half = _draw(cls(weights=fmt), model, **shape)
        assert torch.equal(full.x, half.x) and torch.equal(full.log_prob, half.log_prob), cls.__name__
    with pytest.raises(ValueError, match="weights"):
        WaveNetCompiledSampler(weights="fp8")


# --- the options through the registry and the config groups --------------------------------


def test_sampler_options_reach_the_constructor_and_the_config_groups_pass_the_check():
    from pathlib import Path

    from omegaconf import OmegaConf

    from melforge.core.plugins import load_registries
    from melforge.core.sampler import select_sampler

    regs = load_registries()
    model = _wavenet(dtype=torch.float32)
    sampler = select_sampler(regs.sampler, "wavenet_compiled", model.backbone, model.head,
                             {"weights": "bf16", "threads": 1})
    assert (sampler.weights, sampler.threads) == ("bf16", 1)
    auto = select_sampler(regs.sampler, "auto", model.backbone, model.head, {"weights": "bf16"})
    assert auto.weights == "fp32"  # with auto the options are ignored (the chosen sampler may not take them)
    configs = Path(__file__).resolve().parents[1] / "configs" / "sampler"
    for name in ("wavenet_compiled", "melnet_compiled"):
        cfg = OmegaConf.to_container(OmegaConf.load(configs / f"{name}.yaml"))
        assert cfg["weights"] == "fp32" and cfg["threads"] == "auto"
        regs.sampler.check_config(cfg, where="sampler")
