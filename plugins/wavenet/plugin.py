"""Registers the WaveNet backbone and its compiled sampler through the hooks a third-party
plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_backbone(registry):
    from .backbone import (
        build_wavenet,  # deferred: melforge.plugins.wavenet.backbone loads torch; start-up does not pay for it
    )

    registry.register("wavenet", build_wavenet)


@hookimpl
def melforge_register_sampler(registry):
    from .compiled_sampler import (
        WaveNetCompiledSampler,  # deferred: melforge.plugins.wavenet.compiled_sampler loads torch; start-up does not pay for it
    )

    registry.register("wavenet_compiled", WaveNetCompiledSampler)
