"""The plugin API: one pluggy hook per kind of part.

A plugin is any module or object with functions marked ``@hookimpl`` whose names match the
specs below. melforge's built-ins are plugins of exactly this kind (see
:data:`melforge.core.plugins.BUILTIN_PLUGINS`); third-party packages declare theirs under the
entry-point group ``melforge`` in their ``pyproject.toml``::

    [project.entry-points.melforge]
    my_plugin = "my_package.melforge_plugin"

and implement, for example::

    from melforge.core.hookspecs import hookimpl

    @hookimpl
    def melforge_register_head(registry):
        registry.register("logistic_mixture", LogisticMixtureHead)

Each hook receives a registrar bound to the calling plugin, so the registry knows who
registered what (``melforge-plugins`` lists it). A hook may register any number of entries.
"""

from __future__ import annotations

import pluggy

PROJECT = "melforge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class MelforgeSpecs:
    """Hook specifications. Every ``melforge_register_*`` hook takes one argument, ``registry``:
    a :class:`melforge.core.registry.Registrar` for that kind; implementations return nothing.
    ``melforge_config_searchpath`` takes none and returns a value."""

    @hookspec
    def melforge_register_representation(self, registry) -> None:
        """Register :class:`melforge.core.representation.Representation` subclasses
        (feature analysis of audio, e.g. ``log_mel``)."""

    @hookspec
    def melforge_register_backbone(self, registry) -> None:
        """Register :class:`melforge.core.backbone.Backbone` subclasses (networks that compute
        causal features for every element, e.g. ``melnet``)."""

    @hookspec
    def melforge_register_head(self, registry) -> None:
        """Register :class:`melforge.core.head.Head` subclasses (likelihood heads: per-element
        distribution parameters, NLL and sampling, e.g. ``gmm``)."""

    @hookspec
    def melforge_register_sampler(self, registry) -> None:
        """Register :class:`melforge.core.sampler.Sampler` subclasses (ways of drawing from a
        backbone + head, e.g. ``cached``). A sampler class declares what it supports
        (``backbones``, ``heads``, ``needs_incremental``, ``devices``, ``dtypes``) and its
        ``speed`` rank; configs pick one by name or take the fastest that supports the model."""

    @hookspec
    def melforge_register_inverter(self, registry) -> None:
        """Register :class:`melforge.core.inverter.Inverter` subclasses, or factory functions
        returning one (magnitude or mel spectrogram → waveform, e.g. ``griffin_lim``; a factory
        composes inverters that start from another, e.g. PGHI → Griffin-Lim)."""

    @hookspec
    def melforge_register_dataset(self, registry) -> None:
        """Register :class:`melforge.core.dataset.AudioDataset` subclasses (corpora of audio
        clips, e.g. ``audio_folder``)."""

    @hookspec
    def melforge_config_searchpath(self) -> "str | list[str] | None":
        """Return where Hydra should also look for config files: one search-path string such as
        ``"pkg://my_package.configs"`` (a package holding config groups, e.g. ``backbone/mine.yaml``
        and ``experiment/mine_tiny.yaml``) or ``"file:///abs/path"``, a list of them, or ``None``.

        Unlike the ``melforge_register_*`` hooks, this one takes no argument and *returns* a value;
        every plugin's answer is kept (``firstresult=False``), in plugin loading order, in
        :attr:`melforge.core.plugins.Registries.config_searchpath`, and
        :func:`melforge.core.config_search.searchpath_override` turns them into the
        ``hydra.searchpath=[...]`` override the command-line apps pass to Hydra. A plugin whose
        implementation raises or returns anything else is skipped like any failing plugin."""
