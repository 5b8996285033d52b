"""Registers the built-in datasets through the same hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_dataset(registry):
    from .asterisk import AsteriskPrompts
    from .audio_folder import AudioFolder

    registry.register("asterisk_prompts", AsteriskPrompts)
    registry.register("audio_folder", AudioFolder)
