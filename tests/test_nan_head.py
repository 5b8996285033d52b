"""A head that emits NaN is named where it happens (issue 20, item 2): by the sampler (head,
sampler, tier), by the conformance kit, and in a training run's one-line error rather than as the
representation's ``log_mel features: hold NaN or inf values``."""

from __future__ import annotations

import json

import pytest
import torch

from melforge.core.sampler import NonFiniteSampleError
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet


class NaNAtLargeScaleHead(GMMHead):
    """A GMM head whose draws are NaN where any log-scale parameter exceeds 6 (an overflow the
    author never met): small random models, like the kit's, never get there."""

    family = "nan_head"

    def sample_from_noise(self, params, temperature, noise):
        x = super().sample_from_noise(params, temperature, noise)
        return torch.where(params.abs().amax(dim=-1) > 6.0, torch.full_like(x, float("nan")), x)


class AlwaysNaNHead(GMMHead):
    """A GMM head whose every draw is NaN."""

    family = "always_nan"

    def sample_from_noise(self, params, temperature, noise):
        return torch.full_like(super().sample_from_noise(params, temperature, noise), float("nan"))


@pytest.mark.parametrize("sampler", ["reference", "cached"])
def test_the_sampler_names_the_head_the_sampler_and_the_tier(sampler):
    from melforge.core.model import SpectrogramModel
    from melforge.core.plugins import load_registries
    from melforge.core.sampler import SampleRequest

    model = SpectrogramModel(build_melnet(8, 1), AlwaysNaNHead(8, 2))
    built = load_registries().sampler.create(sampler)
    with pytest.raises(NonFiniteSampleError) as err:
        model.sample(built, SampleRequest(1, 3, 4, generator=torch.Generator().manual_seed(0)))
    text = str(err.value)
    assert text.startswith(f"head always_nan (AlwaysNaNHead) drew nan through sampler {type(built).__name__} in the initial tier")
    assert "12 of 12 sampled values are NaN or inf, the first at batch item 0, frame 0, bin 0" in text


def test_the_compiled_sampler_checks_its_output_too():
    from melforge.core.sampler import Sampler
    from melforge.plugins.melnet.compiled_sampler import MelNetCompiledSampler

    assert MelNetCompiledSampler.sample.checks_finite  # wrapped by Sampler.__init_subclass__
    assert all(getattr(c.__dict__.get("sample"), "checks_finite", True) for c in Sampler.__subclasses__())


def test_a_multiscale_model_names_the_tier_number():
    from melforge.core.plugins import load_registries

    regs = load_registries(extra_plugins=[("nan-plugin", _Plugin())])
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from melforge.core.experiment import build_experiment, place_experiment

    with initialize_config_module(config_module="melforge.configs", version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="train", overrides=[
            "tiers.layers=[1,1]", "backbone.hidden_size=8", "head.components=2", "sampler=cached"]), resolve=True)
    cfg["head"] = {"name": "always_nan", "components": 2}
    import melforge.core.plugins as plugins

    old, plugins._CACHED = plugins._CACHED, regs
    try:
        exp = build_experiment(cfg, need_corpus=False)
        place_experiment(exp, torch.device("cpu"), regs)
    finally:
        plugins._CACHED = old
    with pytest.raises(NonFiniteSampleError, match="in tier 1"):
        exp.model.sample(exp.samplers, batch=1, frames=4, bins=exp.representation.n_bins,
                         generator=torch.Generator().manual_seed(0))


def test_the_kit_finds_a_head_whose_draws_are_nan_at_large_parameters():
    from melforge.testing import check_backbone_and_samplers, check_samples_finite

    head = NaNAtLargeScaleHead(8, 2)
    with pytest.raises(AssertionError, match=r"head .*NaNAtLargeScaleHead.*draws are NaN or inf \(float32, parameters 4·N"):
        check_samples_finite(head)
    with pytest.raises(AssertionError, match="draws are NaN or inf"):
        check_backbone_and_samplers(build_melnet(8, 1), head, frames=2, bins=3, samplers=["reference"])
    check_samples_finite(GMMHead(8, 2))  # a sound head passes


class _Plugin:
    from melforge.core.hookspecs import hookimpl

    @staticmethod
    @hookimpl
    def melforge_register_head(registry):
        registry.register("always_nan", AlwaysNaNHead)


def _train_with_nan_head(tmp_path, compose_train, tiny_train, monkeypatch):
    import melforge.core.plugins as plugins
    from melforge.core.plugins import load_registries
    from melforge.core.learners import train

    monkeypatch.setattr(plugins, "_CACHED", load_registries(extra_plugins=[("nan-plugin", _Plugin())]))
    cfg = compose_train(*tiny_train, "train.max_steps=2", "sample.count=1", "sample.frames=4", "sampler=cached")
    cfg["head"] = {"name": "always_nan", "components": 3}
    with pytest.raises(NonFiniteSampleError) as err:
        train(cfg, tmp_path)
    return str(err.value)


def test_a_training_run_whose_head_draws_nan_names_the_head_not_the_representation(
        tmp_path, compose_train, tiny_train, monkeypatch):
    text = _train_with_nan_head(tmp_path, compose_train, tiny_train, monkeypatch)
    assert "head always_nan (AlwaysNaNHead) drew nan through sampler CachedSampler" in text
    assert "log_mel" not in text
    assert (tmp_path / "checkpoints" / "last.pt").is_file()  # training itself finished


def test_metrics_json_is_written_when_training_finished_and_sampling_failed(
        tmp_path, compose_train, tiny_train, monkeypatch):
    _train_with_nan_head(tmp_path, compose_train, tiny_train, monkeypatch)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 2 and "valid_nll" in metrics
