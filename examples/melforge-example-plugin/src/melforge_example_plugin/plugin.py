"""The plugin module named by the ``melforge`` entry point: hook implementations only."""

from melforge.core.hookspecs import hookimpl

#: Where Hydra finds this package's config groups (``backbone/``, ``experiment/``).
CONFIG_SEARCHPATH = "pkg://melforge_example_plugin.configs"


@hookimpl
def melforge_register_backbone(registry):
    from .backbone import build_causal_conv

    registry.register("causal_conv", build_causal_conv)


@hookimpl
def melforge_config_searchpath():
    return CONFIG_SEARCHPATH
