"""Registers the built-in representations through the same hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_representation(registry):
    from .log_mel import (
        LogMel,  # deferred: importing melforge.plugins.representations.log_mel takes 115 ms; start-up does not pay for it
    )
    from .log_stft import (
        LogStft,  # deferred: importing melforge.plugins.representations.log_stft takes 107 ms; start-up does not pay for it
    )
    from .mu_law import (
        MuLaw,  # deferred: importing melforge.plugins.representations.mu_law takes 113 ms; start-up does not pay for it
    )

    registry.register("log_mel", LogMel)
    registry.register("log_stft", LogStft)
    registry.register("mu_law", MuLaw)
