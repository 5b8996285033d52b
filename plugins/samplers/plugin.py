"""Registers the generic samplers through the same hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_sampler(registry):
    from .cached import (
        CachedSampler,  # deferred: melforge.plugins.samplers.cached loads torch; start-up does not pay for it
    )
    from .reference import (
        ReferenceSampler,  # deferred: melforge.plugins.samplers.reference loads torch; start-up does not pay for it
    )

    registry.register("reference", ReferenceSampler)
    registry.register("cached", CachedSampler)
