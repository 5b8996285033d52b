"""Registers the GMM head through the same hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_head(registry):
    from .head import (
        GMMHead,  # deferred: melforge.plugins.gmm.head loads torch; start-up does not pay for it
    )

    registry.register("gmm", GMMHead)
