"""Registers the built-in datasets through the same hook a third-party plugin uses.

Each is registered by name (``"module:Class"``): its module is imported when a command first
uses it, not when the plugins load (:meth:`melforge.core.registry.Registry.register`).
"""

from melforge.core.hookspecs import hookimpl


@hookimpl
def melforge_register_dataset(registry):
    registry.register("asterisk_prompts", "melforge.datasets.asterisk:AsteriskPrompts")
    registry.register("audio_folder", "melforge.datasets.audio_folder:AudioFolder")
    registry.register("bach_piano", "melforge.datasets.piano:BachChoralesPiano")
    registry.register("gm_music", "melforge.datasets.gm_music:GMMusic")
    registry.register("gm_notes", "melforge.datasets.gm_notes:GMNotes")
