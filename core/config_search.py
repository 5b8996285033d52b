"""Hydra search path from plugins: where the command-line apps also look for config files.

A plugin that ships config groups of its own (``backbone/causal_conv.yaml``,
``experiment/example_tiny.yaml``) returns their location from the
``melforge_config_searchpath`` hook (:mod:`melforge.core.hookspecs`); the loader collects the
answers in :attr:`melforge.core.plugins.Registries.config_searchpath`, and
:func:`searchpath_override` turns them into the override a Hydra app adds to its command line::

    searchpath_override(registries())  # ['hydra.searchpath=[pkg://melforge_example_plugin.configs]']

melforge's own configs stay the primary config path; Hydra merges config groups across the
search path, so ``experiment=example_tiny`` and ``backbone=causal_conv`` then resolve.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .plugins import Registries

#: Characters Hydra's override grammar accepts in an unquoted list element.
_UNQUOTED = re.compile(r"[A-Za-z0-9_./:\-+~@]+")


def _element(path: str) -> str:
    """One search-path entry as a list element of a Hydra override (single-quoted when needed)."""
    if _UNQUOTED.fullmatch(path):
        return path
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


def searchpath_override(regs: "Registries") -> list[str]:
    """The Hydra command-line overrides that add every plugin's config search path.

    Args:
        regs: loaded registries (:func:`melforge.core.plugins.load_registries` or
            :func:`~melforge.core.plugins.registries`); their ``config_searchpath`` entries, in
            plugin loading order, duplicates dropped.

    Returns:
        ``["hydra.searchpath=[pkg://a,pkg://b]"]``, or ``[]`` when no plugin contributes one.
        Entries with characters outside Hydra's unquoted grammar (spaces, commas, brackets,
        quotes) are single-quoted.

    Note:
        This override *sets* ``hydra.searchpath``; a user's own ``hydra.searchpath=[...]`` later
        on the same command line replaces it (Hydra keeps the last value of a key).
    """
    return searchpath_override_for(regs.config_searchpath)


def searchpath_override_for(entries: list[str]) -> list[str]:
    """:func:`searchpath_override` for a list of search-path entries (duplicates dropped), e.g.
    :func:`melforge.core.plugins.load_config_searchpath`'s, which fills no registry."""
    paths: list[str] = []
    for path in entries:
        if path not in paths:
            paths.append(path)
    if not paths:
        return []
    return [f"hydra.searchpath=[{','.join(_element(p) for p in paths)}]"]
