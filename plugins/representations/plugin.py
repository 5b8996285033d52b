"""Registers the built-in representations through the same hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_representation(registry):
    from .log_mel import LogMel
    from .log_stft import LogStft
    from .mu_law import MuLaw

    registry.register("log_mel", LogMel)
    registry.register("log_stft", LogStft)
    registry.register("mu_law", MuLaw)
