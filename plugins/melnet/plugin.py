"""Registers the MelNet backbone through the same hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_backbone(registry):
    from .backbone import build_melnet

    registry.register("melnet", build_melnet)
