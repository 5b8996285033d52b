"""Registers the MelNet backbone and its compiled sampler through the hooks a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_backbone(registry):
    from .backbone import (
        build_melnet,  # deferred: melforge.plugins.melnet.backbone loads torch; start-up does not pay for it
    )

    registry.register("melnet", build_melnet)


@hookimpl
def melforge_register_sampler(registry):
    from .compiled_sampler import (
        MelNetCompiledSampler,  # deferred: melforge.plugins.melnet.compiled_sampler loads torch; start-up does not pay for it
    )

    registry.register("melnet_compiled", MelNetCompiledSampler)
