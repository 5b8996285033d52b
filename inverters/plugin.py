"""Registers the built-in inverters through the same pluggy hook a third-party plugin uses.

The registered factories (:mod:`melforge.inverters.factories`) build each inverter, and the
inverters it starts from, from the flat keys of ``configs/inverter/<name>.yaml``.
"""

from melforge.core.hookspecs import hookimpl

from .factories import build_gradient, build_griffin_lim, build_pghi


@hookimpl
def melforge_register_inverter(registry):
    registry.register("griffin_lim", build_griffin_lim)
    registry.register("gradient", build_gradient)
    registry.register("pghi", build_pghi)
