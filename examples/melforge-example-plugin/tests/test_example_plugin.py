"""melforge-example-plugin's own tests: the causal_conv backbone through melforge.testing.

Run from this folder (``pytest``; ``src`` is put on the path by ``pyproject.toml``) or after
``pip install .``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from melforge.core.plugins import load_registries
from melforge.plugins.gmm.head import GMMHead
from melforge.testing import check_backbone_and_samplers, check_causality, check_registered
from melforge_example_plugin import plugin
from melforge_example_plugin.backbone import CausalConv, build_causal_conv

CONFIGS = Path(plugin.__file__).parent / "configs"
PLUGIN = "melforge-example-plugin:example"


def _registries():
    """melforge's registries with this plugin: through its entry point when installed, else
    added by hand under the name the entry point would give it."""
    regs = load_registries()
    if "causal_conv" in regs.backbone:
        return regs
    return load_registries(extra_plugins=[(PLUGIN, plugin)])


def _perturbed(backbone: CausalConv) -> CausalConv:
    """Non-zero biases everywhere, so that no path is hidden by a zero."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in backbone.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return backbone


@pytest.mark.parametrize(
    "options",
    [{}, {"kernel_size": 3}, {"cond_features": 2}, {"context": True}],
    ids=["plain", "kernel 3", "cond", "context"],
)
def test_backbone_and_samplers_conform(options):
    backbone = _perturbed(build_causal_conv(hidden_size=8, layers=3, **options))
    report = check_backbone_and_samplers(backbone, GMMHead(8, 3), frames=4, bins=5, registries=_registries())
    assert report.samplers[:2] == ["reference", "cached"]


def test_dense_conditioning_is_causal():
    backbone = _perturbed(build_causal_conv(hidden_size=8, layers=2, cond_features=2))
    check_causality(backbone, frames=3, bins=4, cond=torch.randn(2, 3, 4, 2))


def test_registered_builds_from_its_config_file_and_is_listed():
    backbone = check_registered(
        "backbone", "causal_conv", CONFIGS / "backbone" / "causal_conv.yaml",
        extra={"layers": 2}, plugin="melforge-example-plugin", registries=_registries(),
    )
    assert isinstance(backbone, CausalConv) and len(backbone.convs) == 2


def test_config_searchpath_hook_points_at_the_shipped_configs():
    regs = _registries()
    assert plugin.CONFIG_SEARCHPATH in regs.config_searchpath
    assert (CONFIGS / "experiment" / "example_tiny.yaml").is_file()


def test_receptive_field_and_bad_inputs():
    backbone = build_causal_conv(hidden_size=4, layers=3, kernel_size=2)
    assert backbone.receptive_field == 8
    with pytest.raises(ValueError, match="cond_features=0"):
        backbone(torch.zeros(1, 2, 3), cond=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="context"):
        build_causal_conv(4, 1, context=True)(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="layers"):
        build_causal_conv(4, 0)
