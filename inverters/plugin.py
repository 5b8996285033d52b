"""Registers the built-in inverters through the same pluggy hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_inverter(registry):
    from .gradient import GradientInversion
    from .griffin_lim import GriffinLim
    from .pghi import PGHI

    registry.register("griffin_lim", GriffinLim)
    registry.register("gradient", GradientInversion)
    registry.register("pghi", PGHI)
