"""Registers seed 002's phase-gradient vocoder through the hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_inverter(registry):
    from .inverter import (
        build_pg_vocoder,  # deferred: melforge.plugins.pg_vocoder.inverter loads torch; start-up does not pay for it
    )

    registry.register("pg_vocoder", build_pg_vocoder)
