"""Registers the built-in inverters through the same pluggy hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_inverter(registry):
    from .griffin_lim import GriffinLim

    registry.register("griffin_lim", GriffinLim)
