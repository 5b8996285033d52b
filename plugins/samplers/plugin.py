"""Registers the generic samplers through the same hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_sampler(registry):
    from .cached import CachedSampler
    from .reference import ReferenceSampler

    registry.register("reference", ReferenceSampler)
    registry.register("cached", CachedSampler)
