"""Registers the built-in datasets through the same hook a third-party plugin uses."""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_dataset(registry):
    from .asterisk import AsteriskPrompts
    from .audio_folder import AudioFolder
    from .gm_music import GMMusic
    from .piano import BachChoralesPiano

    registry.register("asterisk_prompts", AsteriskPrompts)
    registry.register("audio_folder", AudioFolder)
    registry.register("bach_piano", BachChoralesPiano)
    registry.register("gm_music", GMMusic)
