"""The conformance kit (melforge.testing) on melforge's own parts (MelNet + GMM, WaveNet +
categorical) and on the example plugin's backbone, and that it catches what it is meant to catch (non-causal backbones, a sampler that
drifts from teacher forcing, a wrong head, an unregistered name)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import distributions as D
from torch import nn

from melforge.core.backbone import Backbone
from melforge.core.plugins import load_registries
from melforge.plugins.categorical.head import CategoricalHead
from melforge.plugins.gmm.head import GMMHead
from melforge.plugins.melnet.backbone import build_melnet
from melforge.plugins.wavenet.backbone import build_wavenet
from melforge.testing import (
    check_backbone_and_samplers,
    check_causality,
    check_head_log_prob,
    check_head_sampling,
    check_registered,
    check_sampler_log_prob,
    check_sampler_matches_reference,
)

EXAMPLE_SRC = Path(__file__).resolve().parents[1] / "examples" / "melforge-example-plugin" / "src"
if str(EXAMPLE_SRC) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_SRC))

from melforge_example_plugin import plugin as example_plugin  # noqa: E402
from melforge_example_plugin.backbone import CausalConv, build_causal_conv  # noqa: E402

FRAMES, BINS = 4, 6


@pytest.fixture(scope="module")
def regs():
    """Built-ins plus the example plugin (unless it is installed, then through its entry point)."""
    found = load_registries()
    if "causal_conv" in found.backbone:
        return found
    return load_registries(extra_plugins=[("melforge-example-plugin:example", example_plugin)])


@pytest.fixture(autouse=True)
def _seeded():
    """Parts are initialised from torch's global RNG: the same weights whatever ran before."""
    torch.manual_seed(0)


def _perturbed(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-zero initial states and biases everywhere, so that no path is hidden by a zero."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return module


def _gmm(hidden: int) -> GMMHead:
    return _perturbed(GMMHead(hidden, 3), seed=1)


MELNET = {
    "plain": (dict(), {}),
    "speaker cond (B, C)": (dict(cond_features=3), {"cond": torch.eye(3)[:2]}),
    "dense cond (B, T, F, C)": (dict(cond_features=2), {"cond": torch.randn(2, FRAMES, BINS, 2, generator=torch.Generator().manual_seed(3))}),
    "context (feature extraction)": (dict(context=True), {}),
    "centralized": (dict(centralized=True, bins=BINS), {}),
}


@pytest.mark.parametrize("case", list(MELNET))
def test_melnet_with_gmm_conforms(case, regs):
    options, inputs = MELNET[case]
    backbone = _perturbed(build_melnet(8, 2, **options))
    report = check_backbone_and_samplers(backbone, _gmm(8), frames=FRAMES, bins=BINS, registries=regs, **inputs)
    assert report.samplers == ["reference", "cached", "melnet_compiled"], report


EXAMPLE = {
    "plain": (dict(), {}),
    "speaker cond (B, C)": (dict(cond_features=3), {"cond": torch.eye(3)[:2]}),
    "context": (dict(context=True), {}),
}


@pytest.mark.parametrize("case", list(EXAMPLE))
def test_example_plugin_backbone_with_gmm_conforms(case, regs):
    options, inputs = EXAMPLE[case]
    backbone = _perturbed(build_causal_conv(8, 3, **options))
    report = check_backbone_and_samplers(backbone, _gmm(8), frames=FRAMES, bins=BINS, registries=regs, **inputs)
    assert report.samplers == ["reference", "cached"]
    assert "causal_conv" in report.skipped["melnet_compiled"]


WAVENET = {
    "plain": (dict(), {}),
    "speaker cond (B, C)": (dict(cond_features=3), {"cond": torch.eye(3)[:2]}),
    "dense cond (B, T, 1, C)": (dict(cond_features=2), {"cond": torch.randn(2, 20, 1, 2, generator=torch.Generator().manual_seed(3))}),
}


@pytest.mark.parametrize("case", list(WAVENET))
def test_wavenet_with_categorical_conforms(case, regs):
    """A waveform is a spectrogram of one bin per frame: elements in time order."""
    options, inputs = WAVENET[case]
    backbone = _perturbed(build_wavenet(layers=4, residual_channels=4, skip_channels=6, kernel_size=2,
                                        dilation_cycle=3, **options))
    head = _perturbed(CategoricalHead(6, 16), seed=1)
    report = check_backbone_and_samplers(backbone, head, frames=20, bins=1, prime_frames=5, registries=regs, **inputs)
    assert report.samplers == ["reference", "cached", "wavenet_compiled"], report


def test_example_plugin_backbone_with_categorical_head_conforms(regs):
    head = _perturbed(CategoricalHead(8, 16), seed=1)
    report = check_backbone_and_samplers(_perturbed(build_causal_conv(8, 3)), head, frames=FRAMES, bins=BINS,
                                         registries=regs)
    assert report.samplers == ["reference", "cached"]


def test_categorical_head_against_categorical():
    head = CategoricalHead(4, 16)

    def categorical(params):
        return D.Categorical(logits=params)

    def level_value(level):
        return head.value_of(level, torch.float64)

    check_head_log_prob(head, categorical, to_value=level_value)
    check_head_sampling(head, categorical, to_value=level_value)


def test_gmm_head_against_mixture_same_family():
    head = GMMHead(4, 5)

    def mixture(params):
        mu, log_sigma, log_pi = head.constrain(params)
        return D.MixtureSameFamily(D.Categorical(logits=log_pi), D.Normal(mu, log_sigma.exp()))

    check_head_log_prob(head, mixture)
    check_head_sampling(head, mixture)


def test_registry_round_trips_and_listing(regs):
    backbone = check_registered("backbone", "melnet", {"hidden_size": 8, "layers": 1}, registries=regs,
                                plugin="melforge.plugins.melnet.plugin")
    assert isinstance(backbone, Backbone)
    check_registered("head", "gmm", {"components": 2}, extra={"in_features": 8}, registries=regs)
    check_registered("sampler", "cached", registries=regs)
    config = EXAMPLE_SRC / "melforge_example_plugin" / "configs" / "backbone" / "causal_conv.yaml"
    conv = check_registered("backbone", "causal_conv", config, extra={"layers": 2}, registries=regs,
                            plugin="melforge-example-plugin")
    assert isinstance(conv, CausalConv)


# --- the kit catches what it should ---


def _previous(x: torch.Tensor) -> torch.Tensor:
    """``x: (batch, frames, bins)`` → the element before each in row-major order (0 first)."""
    return torch.nn.functional.pad(x.flatten(1), (1, 0))[:, :-1].reshape(x.shape)


class _Peeking(Backbone):
    """A toy backbone that is *not* causal: features at (i, j) read x at (i + di, j + dj) (a
    neighbour, or the element itself), besides the element before (i, j)."""

    family = "toy"

    def __init__(self, di: int, dj: int):
        super().__init__()
        self.hidden_size, self.di, self.dj = 2, di, dj
        self.proj = nn.Linear(2, 2)

    def forward(self, x, cond=None, context=None):
        prev = _previous(x)
        peek = torch.roll(x, shifts=(-self.di, -self.dj), dims=(1, 2))  # x_{i+di, j+dj} (wrapping)
        return self.proj(torch.stack([prev, peek], dim=-1))


@pytest.mark.parametrize(
    "di,dj,element,culprit",
    [(0, 0, "(0, 0)", "(0, 0)"), (1, 0, "(0, 0)", "(1, 0)"), (0, 1, "(0, 0)", "(0, 1)")],
    ids=["reads itself", "reads the next frame", "reads the next bin"],
)
def test_non_causal_backbone_fails_naming_the_element(di, dj, element, culprit):
    with pytest.raises(AssertionError) as err:
        check_causality(_Peeking(di, dj), frames=3, bins=4)
    message = str(err.value)
    assert f"output features at element {element} depend on x at element {culprit}" in message, message
    assert "_Peeking (family 'toy')" in message


def test_a_later_violation_is_found_at_its_element():
    """Causal everywhere except element (2, 3), which also reads x at (2, 3) itself."""

    class LeaksOnce(_Peeking):
        def forward(self, x, cond=None, context=None):
            prev = _previous(x)
            h = self.proj(torch.stack([prev, prev], dim=-1)).clone()
            h[:, 2, 3, 0] = h[:, 2, 3, 0] + x[:, 2, 3]
            return h

    with pytest.raises(AssertionError, match=r"element \(2, 3\) depend on x at element \(2, 3\)"):
        check_causality(LeaksOnce(0, 0), frames=3, bins=4)


def test_backbone_that_mixes_the_batch_or_ignores_its_input_fails():
    class MixesBatch(_Peeking):
        def forward(self, x, cond=None, context=None):
            prev = _previous(x)
            return self.proj(torch.stack([prev, prev.flip(0)], dim=-1))

    with pytest.raises(AssertionError, match="batch item 0 depend on x of batch item 1"):
        check_causality(MixesBatch(0, 0), frames=2, bins=3)

    class Blind(_Peeking):
        def forward(self, x, cond=None, context=None):
            return self.proj(torch.zeros(*x.shape, 2, dtype=x.dtype)) + 0 * x.unsqueeze(-1)

    with pytest.raises(AssertionError, match=r"element \(0, 1\) depend on no earlier element"):
        check_causality(Blind(0, 0), frames=2, bins=3)


def test_an_element_with_inactive_relus_for_one_x_is_retried_on_another():
    """Features relu(x_prev): constant (zero gradient) where x_prev < 0, so an element reads its
    input for some x only; the check retries it on fresh draws instead of failing."""

    class Relu(_Peeking):
        def forward(self, x, cond=None, context=None):
            prev = _previous(x)
            return torch.stack([torch.relu(prev), torch.relu(prev)], dim=-1)

    def first(seed):  # x[0, 0, 0] of the draw check_causality makes with this seed
        return float(torch.randn(1, 1, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)[0, 0, 0])

    seed = next(s for s in range(100) if first(s) < 0 < first(s + 1))
    check_causality(Relu(0, 0), frames=1, bins=2, batch=1, seed=seed)
    with pytest.raises(AssertionError, match=r"element \(0, 1\) depend on no earlier element of x .*for 1 random x"):
        check_causality(Relu(0, 0), frames=1, bins=2, batch=1, seed=seed, trials=1)


class _FirstBinForgetsLastFrame(CausalConv):
    """An incremental-state bug: at bin 0 the step reads ``x_{i,-1} = 0`` instead of the last
    element of the previous frame, so the cached sampler drifts from teacher forcing."""

    def next_frame(self, state, i, prev_frame):
        state.last = torch.zeros_like(prev_frame[:, -1])


def test_sampler_that_drifts_from_teacher_forcing_fails(regs):
    from melforge.core.model import SpectrogramModel

    torch.manual_seed(0)
    model = SpectrogramModel(_perturbed(_FirstBinForgetsLastFrame(8, 2)), _gmm(8))
    check_causality(model.backbone, frames=3, bins=4)  # forward itself is fine
    with pytest.raises(AssertionError, match=r"sampler 'cached' \(CachedSampler\): log-probability of its draw differs"):
        check_sampler_log_prob(model, "cached", frames=3, bins=4, registries=regs)
    with pytest.raises(AssertionError, match=r"draw differs from the reference sampler's for the same seed 0 at element \(1, 0\)"):
        check_sampler_matches_reference(model, "cached", frames=3, bins=4, registries=regs)
    with pytest.raises(AssertionError, match="cached"):
        check_backbone_and_samplers(model.backbone, model.head, frames=3, bins=4, registries=regs)


def test_wrong_head_fails_against_its_reference():
    head = GMMHead(4, 3)

    def too_wide(params):  # the reference with every σ doubled
        mu, log_sigma, log_pi = head.constrain(params)
        return D.MixtureSameFamily(D.Categorical(logits=log_pi), D.Normal(mu, 2 * log_sigma.exp()))

    with pytest.raises(AssertionError, match="log_prob differs from the torch.distributions reference"):
        check_head_log_prob(head, too_wide)

    class ForgetsSigma(GMMHead):  # draws the chosen component's mean, never its spread
        def sample_from_noise(self, params, temperature, noise):
            return super().sample_from_noise(params, temperature, torch.cat([noise[..., :-1], 0 * noise[..., -1:]], -1))

    narrow = ForgetsSigma(4, 3)

    def mixture(params):
        mu, log_sigma, log_pi = narrow.constrain(params)
        return D.MixtureSameFamily(D.Categorical(logits=log_pi), D.Normal(mu, log_sigma.exp()))

    check_head_log_prob(narrow, mixture)  # its density is right
    with pytest.raises(AssertionError, match="mean log-probability under the head of 4000 head draws"):
        check_head_sampling(narrow, mixture)


def test_unregistered_name_and_unsupported_named_sampler_fail(regs):
    with pytest.raises(AssertionError, match="backbone 'nope' is not registered; registered backbones: .*melnet"):
        check_registered("backbone", "nope", registries=regs)
    with pytest.raises(AssertionError, match="does not build"):
        check_registered("backbone", "melnet", {"hidden_size": 8, "layerz": 1}, registries=regs)
    with pytest.raises(AssertionError, match="'melnet_compiled' was named but cannot sample this model"):
        check_backbone_and_samplers(build_causal_conv(4, 1), GMMHead(4, 2), frames=2, bins=3,
                                    samplers=["melnet_compiled"], registries=regs)
